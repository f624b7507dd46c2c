"""The official LeWM model, built from stable-worldmodel 0.1.1's own code, for side-by-side tests.

`stable_worldmodel/wm/lewm/lewm.py` (class `LeWM`) and `module.py` (`Predictor`, `Embedder`, `MLP`) import only
torch and einops, so they are loaded straight from their files (the package `__init__` would pull torchvision
and lance). The encoder is what stable-pretraining 0.1.8's `vit_hf(size, patch_size=, image_size=,
pretrained=False, use_mask_token=False)` returns: a `transformers.ViTModel` without pooler or mask token, MLP
4 x width, `interpolate_pos_encoding` on. stable-pretraining itself imports torchvision, so that one call is
restated here from its documented behaviour. The model is assembled as the authors' hub loader does:
`ARPredictor(**predictor)`, `Embedder(**action_encoder)`, `MLP(**projector, norm_fn=BatchNorm1d)`.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

CONFIGS = Path(__file__).with_name("configs")
PUSHT_CONFIG: dict[str, Any] = json.loads((CONFIGS / "pusht.json").read_text())
"""The released Push-T model's config.json (lewm-pusht on the hub), as the issue that asked for import quotes it."""
SMALL_CONFIG: dict[str, Any] = json.loads((CONFIGS / "small.json").read_text())
"""A small official config (ViT-Tiny at 32 px, a 2-block predictor): quick to build, every part present."""
SMALL_VIT_CONFIG = copy.deepcopy(SMALL_CONFIG)
SMALL_VIT_CONFIG["encoder"]["size"] = "small"
SMALL_VIT_CONFIG["projector"]["input_dim"] = 384
"""The second size of the parity tests: a ViT-Small encoder (384 wide, 6 heads) at 32 px."""


_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_root() -> Path:
    """The installed `stable_worldmodel` folder, found without running its __init__ (tests/envs/reference.py may
    already have put a stub package, which has no __spec__, in sys.modules)."""
    module = sys.modules.get("stable_worldmodel")
    if module is not None and getattr(module, "__path__", None):
        return Path(list(module.__path__)[0])
    spec = importlib.util.find_spec("stable_worldmodel")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("stable_worldmodel is not installed (pip install --no-deps stable-worldmodel==0.1.1)")
    return Path(list(spec.submodule_search_locations)[0])


def official_modules() -> tuple[ModuleType, ModuleType]:
    """(lewm.py, module.py) of the installed stable-worldmodel; ImportError when it is not installed."""
    folder = official_root() / "wm" / "lewm"
    return _load(folder / "lewm.py", "official_lewm_model"), _load(folder / "module.py", "official_lewm_module")


def official_sigreg() -> nn.Module:
    """stable-worldmodel's SIGReg (wm/loss.py) with the paper's 17 knots and 1024 projections."""
    loss = _load(official_root() / "wm" / "loss.py", "official_lewm_loss")
    return loss.SIGReg(knots=17, num_proj=1024)


def official_vit(size: str, patch_size: int, image_size: int) -> nn.Module:
    """stable-pretraining's vit_hf(size, patch_size, image_size, pretrained=False, use_mask_token=False)."""
    import transformers

    width, depth, heads = _VIT_SIZES[size]
    config = transformers.ViTConfig(hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads,
                                    intermediate_size=4 * width, image_size=image_size, patch_size=patch_size)
    model = transformers.ViTModel(config, add_pooling_layer=False, use_mask_token=False)
    model.config.interpolate_pos_encoding = True
    return model


def build_official(config: dict[str, Any]) -> nn.Module:
    """The official LeWM for an official config.json dict, as the authors' hub loader builds it."""
    lewm_file, module = official_modules()
    strip = lambda section: {k: v for k, v in config[section].items() if k != "_target_"}  # noqa: E731
    encoder = official_vit(config["encoder"]["size"], config["encoder"]["patch_size"], config["encoder"]["image_size"])
    return lewm_file.LeWM(
        encoder=encoder,
        predictor=module.Predictor(**strip("predictor")),
        action_encoder=module.Embedder(**strip("action_encoder")),
        projector=module.MLP(**strip("projector"), norm_fn=nn.BatchNorm1d),
        pred_proj=module.MLP(**strip("pred_proj"), norm_fn=nn.BatchNorm1d),
    )


@torch.no_grad()
def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial weights everywhere, of a trained network's scale: matrices ~ N(0, 1/fan_in) (the official init
    zeroes AdaLN, which would hide the predictor), biases and embeddings small but nonzero, norm scales near 1,
    BatchNorm running statistics far from (0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    for name, tensor in model.state_dict().items():
        if not tensor.is_floating_point():
            continue
        noise = torch.randn(tensor.shape, generator=generator)
        if name.endswith("running_var"):
            tensor.copy_(0.5 + noise.abs())
        elif name.endswith(("weight", "running_mean")) and tensor.dim() == 1:
            tensor.copy_(1.0 + 0.3 * noise)  # norms' scales and BatchNorm means
        elif tensor.dim() >= 2 and name.endswith("weight"):
            tensor.copy_(noise / tensor[0].numel() ** 0.5)  # fan_in = numel of one output row
        else:
            tensor.copy_(0.1 * noise)  # biases, CLS token, position embeddings
    return model


# ---------------------------------------------------------------------------------------------------------
# Side-by-side measurement (shared by tests/official/test_official_parity.py and scripts/official_parity.py)
# ---------------------------------------------------------------------------------------------------------

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def official_preprocess(frames: torch.Tensor, image_size: int) -> torch.Tensor:
    """The official image pipeline on (..., 3, H, W) uint8 frames: to [0, 1], ImageNet-normalise, then resize
    the shorter side to `image_size` (torchvision's Resize(int): the longer side truncated, bilinear, antialias)."""
    images = (frames.float() / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    height, width = images.shape[-2:]
    short, long = min(height, width), max(height, width)
    if short == image_size:
        return images
    new_long = int(image_size * long / short)
    size = (image_size, new_long) if height <= width else (new_long, image_size)
    flat = images.reshape(-1, 3, height, width)  # N 3 H W
    flat = torch.nn.functional.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=True)
    return flat.reshape(*images.shape[:-2], *size)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / (1 + |b|): within 1e-5 means torch.testing's atol = rtol = 1e-5 holds everywhere."""
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    a, b = a.double(), b.double()
    return float(((a - b).abs() / (1.0 + b.abs())).max())


@torch.no_grad()
def compare_with_official(config: dict[str, Any], frame_size: tuple[int, int], seed: int = 0, samples: int = 6,
                          horizon: int = 4) -> dict[str, float]:
    """Largest differences (max |ours - official| / (1 + |official|)) between lewm and the official model holding
    the same random weights: embeddings, one predictor pass, a multi-step rollout and the planning cost. lewm's
    model comes from the official config and state dict through `lewm.official` (the import path a user takes)."""
    from lewm.model import LeWM
    from lewm.official import load_official_weights, read_official_config
    from lewm.planning import final_embedding_cost

    reference = randomise(build_official(config), seed).eval()
    ours = LeWM(read_official_config(config, (5, config["action_encoder"]["input_dim"] // 5))).eval()
    load_official_weights(ours, reference.state_dict(), "official model")
    history, block = config["predictor"]["num_frames"], config["action_encoder"]["input_dim"]
    image_size = config["encoder"]["image_size"]
    generator = torch.Generator().manual_seed(seed + 1)
    frames = torch.randint(0, 256, (1, history, 3, *frame_size), generator=generator, dtype=torch.uint8)  # B=1 h
    goal = torch.randint(0, 256, (1, 1, 3, *frame_size), generator=generator, dtype=torch.uint8)
    past = torch.randn(1, history - 1, block, generator=generator)  # executed blocks between observed frames
    planned = torch.randn(1, samples, horizon, block, generator=generator)  # B S H K candidates

    pixels = official_preprocess(frames, image_size)
    emb_ref = reference.encode({"pixels": pixels})["emb"]  # 1 h D
    emb = ours.encode(frames)
    act_ref = reference.action_encoder(torch.cat([past, planned[:, 0, :1]], dim=1))  # 1 h D
    pred_ref = reference.predict(emb_ref, act_ref)
    pred = ours.predict(emb, ours.encode_actions(torch.cat([past, planned[:, 0, :1]], dim=1)))

    # Official rollout: every candidate starts with the executed past blocks, so both see the same actions.
    sequence = torch.cat([past[:, None].expand(1, samples, -1, -1), planned], dim=2)  # 1 S h-1+H K
    info = {"pixels": pixels[:, None].expand(1, samples, *pixels.shape[1:]),
            "goal": official_preprocess(goal, image_size)[:, None].expand(1, samples, *goal.shape[1:2],
                                                                          *pixels.shape[-3:]),
            "action": sequence[:, :, :history]}
    cost_ref = reference.get_cost(info, sequence)  # 1 S
    rollout_ref = info["predicted_emb"][:, :, history:]  # 1 S H D
    rollout = ours.rollout(emb.expand(samples, -1, -1), planned[0], past.expand(samples, -1, -1))  # S H D
    cost = final_embedding_cost(rollout[None], ours.encode(goal)[:, 0])  # 1 S
    return {"embedding": _max_diff(emb, emb_ref), "predict": _max_diff(pred, pred_ref),
            "rollout": _max_diff(rollout[None], rollout_ref), "cost": _max_diff(cost, cost_ref),
            "cost_scale": float(cost_ref.abs().max())}
