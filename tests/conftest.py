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


@pytest.fixture(scope="session")
def tworoom_run(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> tuple[Path, Path]:
    """Two-Room expert data (30 episodes x 70 steps, 32 px) and a tiny model trained on it for 3000 steps (about
    40 s on 2 cores), shared by the analysis, workflow and planning tests. 3000 steps, not 1500: at 1500 the
    planning success of this model ranged from 12% to 83% over six training seeds (random 11%), so a planning
    test would pass or fail with the seed and the CPU's rounding; at 3000 it ranged from 49% to 79%."""
    from lewm.envs.collect import collect
    from lewm.training import train

    folder = tmp_path_factory.mktemp("analysis")
    data = folder / "tworoom.h5"
    collect("two-room", "expert", 30, data, steps_per_episode=70, image_size=32, seed=0, progress=False)
    train(tiny_config(data, folder / "run", steps=3000))
    return data, folder / "run"
