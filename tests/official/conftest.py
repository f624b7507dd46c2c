"""Fixtures for the official-checkpoint tests: the official model code and official-format folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import torch

from lewm.official import to_transformers4_names


def _official_code() -> ModuleType:
    """tests/official/official_code.py as a module (the tests folder is not a package)."""
    spec = importlib.util.spec_from_file_location("lewm_tests_official_code", Path(__file__).with_name("official_code.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def official() -> ModuleType:
    """build_official(config), randomise(model, seed), official_modules(), official_vit(...)."""
    return _official_code()


SMALL_CONFIG = {
    "encoder": {"size": "tiny", "patch_size": 8, "image_size": 32},
    "projector": {"input_dim": 192, "output_dim": 48, "hidden_dim": 96},
    "pred_proj": {"input_dim": 48, "output_dim": 48, "hidden_dim": 96},
    "predictor": {"_target_": "module.ARPredictor", "num_frames": 3, "input_dim": 48, "hidden_dim": 48,
                  "output_dim": 48, "depth": 2, "heads": 4, "mlp_dim": 96, "dim_head": 16, "dropout": 0.1,
                  "emb_dropout": 0.0},
    "action_encoder": {"_target_": "module.Embedder", "input_dim": 10, "emb_dim": 48},
}
"""A small official config (ViT-Tiny at 32 px, a 2-block predictor): quick to build, every part present."""


def write_official_folder(official: ModuleType, folder: Path, config: dict, seed: int = 0) -> torch.nn.Module:
    """An official-format folder (weights.pt with the released transformers-4 names, config.json) holding the
    official model built from `config` with random weights; returns that model (eval mode)."""
    model = official.randomise(official.build_official(config), seed).eval()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(to_transformers4_names(model.state_dict()), folder / "weights.pt")
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return model


@pytest.fixture
def official_folder(official: ModuleType, tmp_path: Path) -> Path:
    """A released-format folder of the small config (random weights)."""
    write_official_folder(official, tmp_path / "official", SMALL_CONFIG)
    return tmp_path / "official"
