"""The benchmarks run end to end on a tiny budget, write their JSON contract, and their two paths agree.

Speed itself is never asserted here (timings belong to benchmarks/, not tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--threads", "1"], check=True,
                   env=env, cwd=ROOT, capture_output=True, timeout=600)


@pytest.mark.parametrize("fast_flags", [[], ["--graph"]], ids=["fast", "whole-plan-recording"])
def test_plan_speed_contract_and_agreement(tmp_path: Path, fast_flags: list[str]) -> None:
    out = tmp_path / "plan.json"
    _run("plan_speed.py", "--preset", "tiny", "--samples", "40", "--iterations", "3", "--dinowm-samples", "1",
         *fast_flags, "--json", str(out))
    result = json.loads(out.read_text())
    assert result["whole_plan_graph"] is False  # on the CPU the recorded plan runs uncaptured
    assert {"eager_s", "fast_s", "speedup", "dinowm_s", "device"} <= set(result)
    assert result["device"] == "cpu" and result["eager_s"] > 0 and result["fast_s"] > 0 and result["dinowm_s"] > 0
    # the fast planner keeps the eager planner's plan (fp32 on the CPU)
    assert result["plan_max_abs_action_difference"] < 1e-4
    assert abs(result["fast_plan_cost_over_eager_plan_cost"] - 1.0) < 1e-3


@pytest.mark.slow
def test_train_throughput_contract_and_agreement(tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    _run("train_throughput.py", "--preset", "tiny", "--steps", "2", "--warmup", "1", "--json", str(out))
    result = json.loads(out.read_text())
    assert {"eager_frames_per_s", "fast_frames_per_s", "speedup", "device"} <= set(result)
    # compiled + fused AdamW trains like the eager step: the same losses to float rounding
    assert result["max_relative_loss_difference"] < 1e-3
    assert len(result["eager_losses"]) == 3


@pytest.mark.slow
def test_solver_benchmark_contract(tmp_path: Path, tworoom_run: tuple[Path, Path]) -> None:
    """Every solver on the same pairs, one budget each: a row per solver with its success, interval and times,
    the target summary and the plot."""
    out = tmp_path / "solvers.json"
    _run("solvers.py", "--run", str(tworoom_run[1]), "--env", "two-room", "--episodes", "3",
         "--solvers", "cem,icem,mppi,ps,gd,gd:lr=0.01",
         "--budgets", "cem:12x2,8x1", "icem:12x2", "mppi:12x2", "ps:12x1", "gd:2x2", "--json", str(out))
    result = json.loads(out.read_text())
    rows = result["results"]
    assert [(row["solver"], row["samples"], row["iterations"]) for row in rows] == [
        ("cem", 12, 2), ("cem", 8, 1), ("icem", 12, 2), ("mppi", 12, 2), ("ps", 12, 1), ("gd", 2, 2), ("gd", 2, 2)]
    assert rows[-1]["overrides"] == {"lr": 0.01} and rows[-1]["settings"]["lr"] == 0.01
    assert rows[0]["settings"]["elites"] == 2 and rows[0]["settings"]["samples"] == 12  # 10% of 12, raised to 2
    for row in rows:
        assert row["ci95"][0] <= row["success_rate"] <= row["ci95"][1]
        assert row["first_cycle_seconds"] > 0 and row["seconds_per_cycle"] > 0 and row["cycles"] >= 1
    assert result["episodes"] == 3 and 0 <= result["random_success_rate"] <= 1
    assert result["summary"]["reference"] == "cem 12x2"
    assert set(result["summary"]) == {"reference", "within_4_points_at_a_third_of_the_time",
                                      "best_success_per_second", "best_above_random_per_second"}
    assert out.with_suffix(".png").stat().st_size > 0
