"""Shared fixtures for the model tests: the tiny preset with a 2-D action space."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from lewm.config import ModelConfig, preset
from lewm.model import LeWM


def tiny_config() -> ModelConfig:
    """The tiny preset's model with action_dim 2 (image 32 px, patch 8, history 3, frameskip 5, D 32)."""
    cfg = preset("tiny").model
    cfg.action_dim = 2
    return cfg


def perturb_adaln(model: torch.nn.Module, std: float = 0.1, seed: int = 1) -> None:
    """Give every AdaLN modulation layer random weights, as after some training, so actions matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "adaLN_modulation" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * std)


@pytest.fixture
def perturb() -> Callable[[torch.nn.Module], None]:
    """`perturb_adaln` as a fixture, so test modules need not import conftest (fragile across folders)."""
    return perturb_adaln


@pytest.fixture
def cfg() -> ModelConfig:
    return tiny_config()


@pytest.fixture
def model(cfg: ModelConfig) -> LeWM:
    """A tiny LeWM in eval mode with perturbed AdaLN so that predictions depend on actions."""
    torch.manual_seed(0)
    net = LeWM(cfg)
    perturb_adaln(net)
    return net.eval()
