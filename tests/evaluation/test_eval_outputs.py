"""What lewm eval leaves behind and shows: the split its pairs really came from, a GIF that plays at 10 frames
per second, progress bars that --no-progress turns off."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lewm.cli.main import run
from lewm.envs.collect import collect
from lewm.evaluation.evaluate import FPS, PAUSE_FRAMES, start_episodes, write_video
from lewm.evaluation.protocol import Rollouts
from lewm.training import train

SMALL = ["--episodes", "3", "--samples", "8", "--elites", "2", "--iterations", "1"]


@pytest.fixture(scope="module")
def run_without_val(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> Path:
    """A tiny model trained 4 steps on 6 Two-Room episodes with val_fraction 0: no validation episodes."""
    folder = tmp_path_factory.mktemp("noval")
    data = folder / "tworoom.h5"
    collect("two-room", "expert", 6, data, steps_per_episode=60, image_size=32, seed=0, progress=False)
    config = tiny_config(data, folder / "run", steps=4)
    config.data.val_fraction = 0.0
    train(config)
    return folder / "run"


def gif_durations(path: Path) -> list[int]:
    """Milliseconds each frame of a GIF is shown, read back with Pillow."""
    with Image.open(path) as image:
        durations = []
        for index in range(image.n_frames):
            image.seek(index)
            durations.append(image.info["duration"])
    return durations


def test_eval_json_records_the_split_it_used_and_bars_show(run_without_val: Path, capsys) -> None:
    assert run(["eval", "--run", str(run_without_val), "--videos", "1", *SMALL]) == 0
    protocol = json.loads((run_without_val / "eval" / "eval.json").read_text())["protocol"]
    assert protocol["split"] == "train (no validation episodes)" and protocol["start_episodes"] == 6
    assert protocol["device"] == "cpu" or protocol["device"].startswith("cuda")
    err = capsys.readouterr().err
    assert "eval plan" in err and "eval random" in err  # tqdm bars of CEM iterations and environment steps
    durations = gif_durations(run_without_val / "eval" / "episodes.gif")
    # 100 ms a frame (identical neighbours are merged by Pillow, adding up), the last frame held 600 ms
    assert durations[0] == 1000 // FPS and durations[-1] >= PAUSE_FRAMES * 1000 // FPS
    assert all(d > 0 and d % (1000 // FPS) == 0 for d in durations)


def test_no_progress_keeps_stderr_empty(run_without_val: Path, tmp_path: Path, capsys) -> None:
    args = ["eval", "--run", str(run_without_val), "--videos", "0", "--out", str(tmp_path), "--no-progress"]
    assert run(args + SMALL) == 0
    assert capsys.readouterr().err == ""


def test_start_episodes_say_where_they_come_from() -> None:
    episodes, split = start_episodes(20, "val", 0.1, seed=0)
    assert split == "val" and len(episodes) == 2
    episodes, split = start_episodes(20, "val", 0.0, seed=0)
    assert split == "train (no validation episodes)" and len(episodes) == 20
    episodes, split = start_episodes(1, "val", 0.5, seed=0)  # one episode: nothing to hold out
    assert split == "train (no validation episodes)" and list(episodes) == [0]
    episodes, split = start_episodes(5, "all", 0.1, seed=0)
    assert split == "all" and list(episodes) == [0, 1, 2, 3, 4]


def test_gif_plays_at_ten_frames_per_second(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    episodes = [[rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(length)] for length in (4, 3)]
    goals = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in episodes]
    rollouts = Rollouts(success=np.zeros(2, bool), steps_to_success=np.zeros(2), solved_at_start=np.zeros(2, bool),
                        frames=episodes, goal_frames=goals)
    path = write_video(rollouts, tmp_path / "episodes.gif")
    assert gif_durations(path) == [100, 100, 100, 600, 100, 100, 600]
    import imageio.v3 as imageio

    assert imageio.immeta(path)["loop"] == 0  # loops forever
    assert imageio.imread(path).shape[0] == 7
