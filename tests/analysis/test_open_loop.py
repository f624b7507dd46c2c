"""Open-loop prediction error: a trained model predicts the following embeddings better with the recorded
actions than with shuffled ones or by copying the last embedding, and the error grows with the horizon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lewm.analysis.open_loop import open_loop_errors

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "open_loop_error.py"


@pytest.mark.slow
def test_recorded_actions_predict_better_than_shuffled_ones_and_than_copying(tworoom_run) -> None:
    _, run_dir = tworoom_run
    result = open_loop_errors(run_dir, blocks=3, clips=64)
    errors = result["errors"]
    assert set(errors) == {"true actions", "shuffled actions", "copy last"} and result["clips"] == 64
    assert all(len(values) == 3 for values in errors.values())
    for block in range(3):
        assert errors["true actions"][block] < 0.8 * errors["shuffled actions"][block]
        assert errors["true actions"][block] < 0.8 * errors["copy last"][block]
    assert errors["copy last"][2] > errors["copy last"][0]  # the agent moves away from where it was


@pytest.mark.slow
def test_script_prints_and_writes_the_errors(tworoom_run, tmp_path: Path) -> None:
    _, run_dir = tworoom_run
    out = tmp_path / "open_loop.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--run", str(run_dir), "--blocks", "2", "--clips", "16",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "true actions" in done.stdout and "copy last" in done.stdout
    assert len(json.loads(out.read_text())["errors"]["shuffled actions"]) == 2
