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

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

_VIT_SIZES = {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_modules() -> tuple[ModuleType, ModuleType]:
    """(lewm.py, module.py) of the installed stable-worldmodel; ImportError when it is not installed."""
    spec = importlib.util.find_spec("stable_worldmodel")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("stable_worldmodel is not installed (pip install --no-deps stable-worldmodel==0.1.1)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "wm" / "lewm"
    return _load(folder / "lewm.py", "official_lewm_model"), _load(folder / "module.py", "official_lewm_module")


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
    """Non-trivial weights everywhere (the official init zeroes AdaLN, which would hide the predictor) and
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
        else:
            tensor.copy_(0.08 * noise)
    return model
