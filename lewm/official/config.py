"""The official LeWM `config.json` and lewm's `ModelConfig`: reading one into the other and back.

The released config (values of the Push-T model):

    {"encoder": {"size": "tiny", "patch_size": 14, "image_size": 224},
     "projector": {"input_dim": 192, "output_dim": 192, "hidden_dim": 2048}, "pred_proj": {...same...},
     "predictor": {"_target_": "module.ARPredictor", "num_frames": 3, "input_dim": 192, "hidden_dim": 192,
                   "output_dim": 192, "depth": 6, "heads": 16, "mlp_dim": 2048, "dim_head": 64, "dropout": 0.1,
                   "emb_dropout": 0.0},
     "action_encoder": {"_target_": "module.Embedder", "input_dim": 10, "emb_dim": 192}}

The authors' loader builds the encoder with stable-pretraining's `vit_hf(size, patch_size=, image_size=)` (a named
ViT size, MLP 4x the width), the projectors as `MLP(input_dim, hidden_dim, output_dim, norm_fn=BatchNorm1d)`,
and the other two from their sections (keyword arguments of the official `Predictor` and `Embedder`, whose
defaults fill what a section leaves out). The config holds no frameskip: `action_encoder.input_dim` is
frameskip x action size, split by the caller.

Some official configs build layers lewm does not have (the official `Transformer` adds `input_proj`,
`cond_proj` and `output_proj` when the predictor's dims differ; `Attention` drops `to_out` for one head as wide
as the model). Those are refused with a `LewmError` naming the field, never turned into a different model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lewm.config import EncoderConfig, ModelConfig, PredictorConfig, is_number
from lewm.errors import LewmError

VIT_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}
"""stable-pretraining's named ViT sizes: name -> (width, depth, heads); the MLP is 4 x width."""

# section -> (required fields, optional fields with the official defaults, accepted `_target_` endings)
_SECTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any], tuple[str, ...]]] = {
    "encoder": (("size", "patch_size", "image_size"), {}, ("vit_hf",)),
    "projector": (("input_dim", "hidden_dim"), {"output_dim": None}, ("MLP",)),
    "pred_proj": (("input_dim", "hidden_dim"), {"output_dim": None}, ("MLP",)),
    "predictor": (("num_frames", "input_dim", "hidden_dim", "depth", "heads", "mlp_dim"),
                  {"output_dim": None, "dim_head": 64, "dropout": 0.0, "emb_dropout": 0.0},
                  ("ARPredictor", "Predictor")),
    "action_encoder": ((), {"input_dim": 10, "smoothed_dim": 10, "emb_dim": 10, "mlp_scale": 4}, ("Embedder",)),
}
_FLOAT_FIELDS = ("dropout", "emb_dropout")
EMBEDDER_DEFAULTS = _SECTIONS["action_encoder"][1]
PREDICTOR_TARGET = "module.ARPredictor"
EMBEDDER_TARGET = "module.Embedder"


def _section(raw: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    """One section with defaults filled in; unknown fields, missing fields and non-numbers are errors."""
    required, optional, targets = _SECTIONS[name]
    values = raw.get(name)
    if not isinstance(values, Mapping):
        raise LewmError(f"{where}: '{name}' must be an object with {', '.join(required) or 'its fields'}, "
                        f"got {values!r}")
    target = values.get("_target_")
    if target is not None and not str(target).endswith(targets):
        raise LewmError(f"{where}: {name}._target_ = {target!r} is not one of the official classes "
                        f"({', '.join(targets)})")
    unknown = sorted(set(values) - set(required) - set(optional) - {"_target_"})
    if unknown:
        raise LewmError(f"{where}: {name}.{unknown[0]} is not a field of the official config")
    missing = [field for field in required if field not in values]
    if missing:
        raise LewmError(f"{where}: {name}.{missing[0]} is missing")
    out = {**optional, **{k: v for k, v in values.items() if k != "_target_"}}
    for field, value in out.items():
        if field == "size" or value is None:
            continue
        number = is_number(value)
        if field in _FLOAT_FIELDS:
            ok = number and 0.0 <= value < 1.0
        else:
            ok = number and float(value).is_integer() and value >= 1
        if not ok:
            kind = "a number in [0, 1)" if field in _FLOAT_FIELDS else "an integer >= 1"
            raise LewmError(f"{where}: {name}.{field} = {value!r} must be {kind}")
        out[field] = float(value) if field in _FLOAT_FIELDS else int(value)
    if "output_dim" in out and out["output_dim"] is None:
        out["output_dim"] = out["input_dim"]
    return out


def _require(condition: bool, where: str, field: str, value: Any, why: str) -> None:
    if not condition:
        raise LewmError(f"{where}: {field} = {value!r} {why}: lewm cannot represent this model")


def read_official_config(raw: Any, block_dim_split: tuple[int, int] | None = None,
                         where: str = "config.json") -> ModelConfig:
    """The `ModelConfig` of an official config dict; `block_dim_split` = (frameskip, action size) when known.

    Without the split the result holds frameskip 1 and action_dim = action_encoder.input_dim, which builds the
    same network (only the block's size matters to it).
    """
    if not isinstance(raw, Mapping):
        raise LewmError(f"{where}: expected a JSON object with encoder, predictor, action_encoder, projector and "
                        f"pred_proj, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_SECTIONS) - {"_target_"})
    if unknown:
        raise LewmError(f"{where}: '{unknown[0]}' is not a section of the official LeWM config")
    enc, proj, pproj, pred, act = (_section(raw, name, where) for name in _SECTIONS)
    _require(isinstance(enc["size"], str) and enc["size"] in VIT_SIZES, where, "encoder.size", enc["size"],
             f"is not one of {', '.join(VIT_SIZES)}")
    width, depth, heads = VIT_SIZES[enc["size"]]
    _require(enc["image_size"] % enc["patch_size"] == 0, where, "encoder.patch_size", enc["patch_size"],
             f"does not divide encoder.image_size {enc['image_size']}")
    embed = pred["input_dim"]
    _check_predictor(pred, where)
    _require(proj["input_dim"] == width, where, "projector.input_dim", proj["input_dim"],
             f"differs from the {enc['size']} ViT's width {width}")
    for field, value in (("projector.output_dim", proj["output_dim"]), ("pred_proj.input_dim", pproj["input_dim"]),
                         ("pred_proj.output_dim", pproj["output_dim"]), ("action_encoder.emb_dim", act["emb_dim"])):
        _require(value == embed, where, field, value, f"differs from predictor.input_dim {embed}")
    _require(pproj["hidden_dim"] == proj["hidden_dim"], where, "pred_proj.hidden_dim", pproj["hidden_dim"],
             f"differs from projector.hidden_dim {proj['hidden_dim']} (lewm's two projectors share one size)")
    frameskip, action_dim = block_dim_split or (1, act["input_dim"])
    if frameskip * action_dim != act["input_dim"]:
        raise LewmError(f"{where}: action_encoder.input_dim = {act['input_dim']} is not frameskip {frameskip} x "
                        f"action size {action_dim}")
    return ModelConfig(
        encoder=EncoderConfig(image_size=enc["image_size"], patch_size=enc["patch_size"], width=width, depth=depth,
                              heads=heads, mlp_dim=4 * width),
        predictor=PredictorConfig(depth=pred["depth"], heads=pred["heads"], head_dim=pred["dim_head"],
                                  mlp_dim=pred["mlp_dim"], dropout=pred["dropout"]),
        embed_dim=embed, projector_hidden=proj["hidden_dim"], action_hidden=act["mlp_scale"] * act["emb_dim"],
        action_patch=act["smoothed_dim"], history=pred["num_frames"], frameskip=frameskip, action_dim=action_dim,
    )


def _check_predictor(pred: dict[str, Any], where: str) -> None:
    """The official predictor lewm can mirror: one width throughout, an output projection, no input dropout."""
    _require(pred["hidden_dim"] == pred["input_dim"], where, "predictor.hidden_dim", pred["hidden_dim"],
             f"differs from predictor.input_dim {pred['input_dim']} (the official Transformer then adds "
             "input_proj and cond_proj layers)")
    _require(pred["output_dim"] == pred["hidden_dim"], where, "predictor.output_dim", pred["output_dim"],
             f"differs from predictor.hidden_dim {pred['hidden_dim']} (the official Transformer then adds "
             "an output_proj layer)")
    _require(not (pred["heads"] == 1 and pred["dim_head"] == pred["hidden_dim"]), where, "predictor.heads",
             pred["heads"], "with dim_head equal to the width makes the official attention drop its to_out layer")
    _require(pred["emb_dropout"] == 0.0, where, "predictor.emb_dropout", pred["emb_dropout"],
             "is not 0 (lewm's predictor has no dropout on its input embeddings)")


def write_official_config(model: ModelConfig, where: str = "model") -> dict[str, Any]:
    """The official config dict of a lewm model, in the released shape; a `LewmError` names what cannot be said."""
    enc, pred, embed = model.encoder, model.predictor, model.embed_dim
    size = next((name for name, dims in VIT_SIZES.items()
                 if dims == (enc.width, enc.depth, enc.heads) and enc.mlp_dim == 4 * enc.width), None)
    if size is None:
        raise LewmError(f"{where}.encoder: width {enc.width}, depth {enc.depth}, heads {enc.heads}, mlp_dim "
                        f"{enc.mlp_dim} is not a named ViT size ({', '.join(VIT_SIZES)}, MLP 4 x width): the official "
                        "config cannot express it")
    if model.action_hidden % embed:
        raise LewmError(f"{where}.action_hidden = {model.action_hidden} is not a multiple of embed_dim {embed}: the "
                        "official Embedder's hidden size is mlp_scale x emb_dim")
    if pred.heads == 1 and pred.head_dim == embed:
        raise LewmError(f"{where}.predictor.heads = 1 with head_dim = embed_dim {embed}: the official attention "
                        "would drop its output layer")
    action = {"_target_": EMBEDDER_TARGET, "input_dim": model.action_block_dim, "emb_dim": embed}
    if model.action_patch != EMBEDDER_DEFAULTS["smoothed_dim"]:
        action["smoothed_dim"] = model.action_patch
    if model.action_hidden // embed != EMBEDDER_DEFAULTS["mlp_scale"]:
        action["mlp_scale"] = model.action_hidden // embed
    projector = {"input_dim": enc.width, "output_dim": embed, "hidden_dim": model.projector_hidden}
    return {
        "encoder": {"size": size, "patch_size": enc.patch_size, "image_size": enc.image_size},
        "projector": projector,
        "pred_proj": {**projector, "input_dim": embed},
        "predictor": {"_target_": PREDICTOR_TARGET, "num_frames": model.history, "input_dim": embed,
                      "hidden_dim": embed, "output_dim": embed, "depth": pred.depth, "heads": pred.heads,
                      "mlp_dim": pred.mlp_dim, "dim_head": pred.head_dim, "dropout": pred.dropout,
                      "emb_dropout": 0.0},
        "action_encoder": action,
    }
