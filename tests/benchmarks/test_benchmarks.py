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
