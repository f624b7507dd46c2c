"""One small trained Two-Room run shared by the analysis tests (probe, straightness, surprise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lewm.envs.collect import collect
from lewm.training import train


@pytest.fixture(scope="session")
def tworoom_run(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> tuple[Path, Path]:
    """Two-Room expert data (30 episodes x 70 steps, 32 px) and a tiny model trained on it for 1500 steps (about
    40 s on 2 cores: long enough for the paper's probe claim, linear r > 0.9, which 300 steps do not reach)."""
    folder = tmp_path_factory.mktemp("analysis")
    data = folder / "tworoom.h5"
    collect("two-room", "expert", 30, data, steps_per_episode=70, image_size=32, seed=0, progress=False)
    train(tiny_config(data, folder / "run", steps=1500))
    return data, folder / "run"
