"""Temporal straightness: the batch statistic, its logging during training and `lewm straightness`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lewm.cli.main import run
from lewm.data import EpisodeFile, write_episodes
from lewm.envs.collect import collect
from lewm.runs import load_run
from lewm.training.diagnostics import episode_straightness, temporal_straightness


def test_straight_lines_score_one_zigzags_minus_one_noise_near_zero() -> None:
    generator = torch.Generator().manual_seed(0)
    steps = torch.arange(6.0)[None, :, None]  # B=1 T=6 1
    direction = torch.randn(4, 1, 16, generator=generator)  # B 1 D
    line = torch.randn(4, 1, 16, generator=generator) + steps * direction  # B T D: straight lines, constant speed
    assert temporal_straightness(line.double()) == pytest.approx(1.0, abs=1e-6)
    speeds = torch.rand(4, 6, 1, generator=generator).cumsum(dim=1)  # B T 1: increasing, at a varying pace
    assert temporal_straightness((speeds * direction).double()) == pytest.approx(1.0, abs=1e-6)  # speed is ignored
    zigzag = torch.zeros(4, 6, 16)
    zigzag[:, 1::2] = direction  # back and forth between two points
    assert temporal_straightness(zigzag.double()) == pytest.approx(-1.0, abs=1e-6)
    turn = torch.zeros(1, 3, 2)
    turn[0, 1], turn[0, 2] = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])  # a right angle
    assert temporal_straightness(turn) == pytest.approx(0.0, abs=1e-6)
    walks = torch.randn(64, 200, 32, generator=generator).cumsum(dim=1)  # independent steps: uncorrelated turns
    assert abs(temporal_straightness(walks)) < 0.1
    assert temporal_straightness(torch.randn(4, 2, 8)) is None  # two frames: one velocity, nothing to compare


class _Brightness(torch.nn.Module):
    """A stand-in encoder whose embedding of a frame is its mean pixel value times a fixed direction."""

    direction = torch.tensor([0.6, -0.8])

    def encode(self, frames: torch.Tensor) -> torch.Tensor:  # B T 3 H W uint8 -> B T 2
        return frames.float().mean(dim=(2, 3, 4))[..., None] * self.direction


def test_episode_straightness_reads_each_episode_in_order_every_stride_steps(tmp_path: Path) -> None:
    """Frames whose brightness grows with time lie on a line (1); brightness alternating every `stride` steps
    goes back and forth (-1) when frames are read exactly `stride` steps apart, in order."""
    time = np.arange(23)
    brightness = {"rising": time * 10, "blinking": (time // 5 % 2) * 200}
    file = tmp_path / "brightness.h5"
    write_episodes(file, [{"pixels": np.broadcast_to(level[:, None, None, None], (23, 4, 4, 3)).astype(np.uint8),
                           "action": np.zeros((23, 2), np.float32)} for level in brightness.values()])
    with EpisodeFile(file) as data:
        rising, blinking = episode_straightness(_Brightness(), data, [0, 1], stride=5)
        assert episode_straightness(_Brightness(), data, [0], stride=12) == []  # fewer than 3 frames: skipped
    assert rising == pytest.approx(1.0, abs=1e-6) and blinking == pytest.approx(-1.0, abs=1e-6)


def test_trained_embeddings_are_straighter_than_the_same_frames_shuffled_in_time(tworoom_run) -> None:
    """The tiny model trained 3000 steps on expert Two-Room paths: its episodes are far straighter than their own
    frames in a random order (measured over all 30 episodes: 0.20 vs -0.44, every episode; training seeds 1 and 2:
    0.10 vs -0.46 and -0.06 vs -0.46). An untrained encoder of the same size does not get there (-0.32 vs -0.45)."""
    _, run_dir = tworoom_run
    run = load_run(run_dir)
    with EpisodeFile(run.config.data_path) as data:
        episodes = range(data.num_episodes)
        in_order = np.array(episode_straightness(run.model, data, episodes, run.config.model.frameskip))
        shuffled = np.array(episode_straightness(_ShuffledInTime(run.model), data, episodes,
                                                 run.config.model.frameskip))
    assert len(in_order) == len(shuffled) == 30
    assert in_order.mean() > shuffled.mean() + 0.3, (in_order.mean(), shuffled.mean())
    assert (in_order > shuffled).mean() >= 0.8


class _ShuffledInTime(torch.nn.Module):
    """A model's encoder applied to each episode's frames in a random (seeded) order."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.generator = torch.Generator().manual_seed(0)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:  # B T 3 H W
        order = torch.randperm(frames.shape[1], generator=self.generator)
        return self.model.encode(frames[:, order])


def test_training_logs_straightness_with_the_collapse_diagnostics(tworoom_run) -> None:
    _, run_dir = tworoom_run
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [row for row in rows if row["split"] == "train"]
    assert train_rows and all(-1 <= row["straightness"] <= 1 for row in train_rows)
    assert all({"effective_rank", "embedding_std", "sigreg"} <= set(row) for row in train_rows)


def test_command_prints_and_writes_json(tworoom_run, tmp_path: Path, capsys) -> None:
    _, run_dir = tworoom_run
    out = tmp_path / "s.json"
    assert run(["straightness", "--run", str(run_dir), "--episodes", "3", "--json", str(out)]) == 0
    assert "straightness" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert -1 <= result["straightness"] <= 1 and result["episodes"] >= 1 and result["stride"] == 5


def test_missing_run_and_too_short_episodes_are_one_line(tworoom_run, tmp_path: Path, capsys) -> None:
    _, run_dir = tworoom_run
    assert run(["straightness", "--run", str(tmp_path / "nope")]) == 2
    assert "run directory does not exist" in capsys.readouterr().err
    short = tmp_path / "short.h5"
    collect("two-room", "expert", 4, short, steps_per_episode=8, image_size=32, seed=0, progress=False)
    assert run(["straightness", "--run", str(run_dir), "--data", str(short)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no episode has the 11 steps" in err and len(err.splitlines()) == 1
