"""Shared fixtures: a small synthetic episode file (a dot moved by random actions) and tiny-preset configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lewm.config import TrainConfig, preset
from lewm.data.synthetic import write_moving_dot_file


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: building ViTs and copying their weights (trunc_normal_, copy_) runs 5-20x
    slower with two threads on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def dots_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 episodes x 40 steps of 32 px frames (read-only: tests must not modify it)."""
    return write_moving_dot_file(tmp_path_factory.mktemp("dots") / "dots.h5", num_episodes=24, episode_length=40)


def make_tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    """The tiny preset pointed at `data` and `out`, single-threaded and quiet, with field overrides."""
    config = preset("tiny")
    config.data_path = data
    config.out = out
    config.threads = 1
    for name, value in overrides.items():
        setattr(config, name, value)
    config.validate()
    return config


@pytest.fixture(scope="session")
def tiny_config():
    """`make_tiny_config` as a fixture: tiny_config(data, out, steps=..., resume=...)."""
    return make_tiny_config
