"""lewm probe and lewm surprise show what they are doing on stderr (tqdm bars), and nothing with --no-progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from lewm.cli.main import run
from lewm.envs.collect import collect
from lewm.training import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> Path:
    """A tiny model trained 4 steps on 8 Two-Room episodes (40 steps, 32 px)."""
    folder = tmp_path_factory.mktemp("progress")
    data = folder / "tworoom.h5"
    collect("two-room", "expert", 8, data, steps_per_episode=40, image_size=32, seed=0, progress=False)
    train(tiny_config(data, folder / "run", steps=4))
    return folder / "run"


@pytest.mark.parametrize(("command", "bars"), [
    (["probe", "--target", "state", "--batch-size", "64", "--mlp-epochs", "5"], ("probe encode", "probe fit")),
    (["surprise", "--episodes", "4", "--frames", "4", "--event", "2"], ("surprise",)),
])
def test_bars_show_and_no_progress_silences_them(tiny_run: Path, tmp_path: Path, capsys, command: list[str],
                                                 bars: tuple[str, ...]) -> None:
    args = [*command, "--run", str(tiny_run), "--json", str(tmp_path / "numbers.json")]
    assert run(args) == 0
    err = capsys.readouterr().err
    assert all(bar in err for bar in bars), err
    assert "100%" in err  # every bar ran to its end
    assert run([*args, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
