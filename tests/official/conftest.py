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
    path = Path(__file__).with_name("official_code.py")
    spec = importlib.util.spec_from_file_location("lewm_tests_official_code", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def official() -> ModuleType:
    """build_official(config), randomise(model, seed), official_modules(), official_vit(...)."""
    return _CODE


_CODE = _official_code()
PUSHT_CONFIG, SMALL_CONFIG, SMALL_VIT_CONFIG = _CODE.PUSHT_CONFIG, _CODE.SMALL_CONFIG, _CODE.SMALL_VIT_CONFIG


@pytest.fixture(scope="session")
def official_configs() -> dict[str, dict]:
    """The configs the parity tests run: the released Push-T one ("paper") and a ViT-Small one."""
    return {"paper": PUSHT_CONFIG, "small-vit": SMALL_VIT_CONFIG}


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
