"""Temporal straightness: the batch statistic, its logging during training and `lewm straightness`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lewm.cli.main import run
from lewm.envs.collect import collect
from lewm.training.diagnostics import temporal_straightness


def test_straight_lines_score_one_zigzags_minus_one_noise_near_zero() -> None:
    steps = torch.arange(6.0)[None, :, None]  # B=1 T=6 1
    direction = torch.randn(4, 1, 16)  # B 1 D
    line = torch.randn(4, 1, 16) + steps * direction  # B T D: points on straight lines, constant speed
    assert temporal_straightness(line) == pytest.approx(1.0, abs=1e-5)
    zigzag = torch.zeros(4, 6, 16)
    zigzag[:, 1::2] = direction  # back and forth between two points
    assert temporal_straightness(zigzag) == pytest.approx(-1.0, abs=1e-5)
    noise = torch.randn(256, 8, 64, generator=torch.Generator().manual_seed(0)).cumsum(dim=1)  # random walks
    assert abs(temporal_straightness(noise)) < 0.05
    assert temporal_straightness(torch.randn(4, 2, 8)) is None  # two frames: one velocity, nothing to compare


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
