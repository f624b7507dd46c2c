"""scripts/pusht_paper.sh, the paper-size Push-T recipe, run end to end on a tiny budget on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lewm.data import EpisodeFile

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pusht_paper.sh"


def _run_script(out: Path) -> str:
    env = {
        **os.environ, "OUT": str(out), "EPISODES": "6", "STEPS": "40", "IMAGE_SIZE": "32", "PRESET": "tiny",
        "DEVICE": "cpu", "WORKERS": "2", "TRAIN_ARGS": "--steps 4",
        "EVAL_ARGS": "--episodes 3 --samples 8 --elites 2 --iterations 1", "OMP_NUM_THREADS": "1",
        # the script calls `lewm`: make sure it is the one of this interpreter
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_script_collects_trains_evaluates_and_reuses_its_stages(tmp_path: Path) -> None:
    out = tmp_path / "pusht"
    first = _run_script(out)
    assert "[1/3] collecting 6 weak Push-T episodes" in first
    assert "vs random" in first
    data = out / "pusht_weak_train.h5"
    assert data.exists() and not (out / "pusht_weak_train.partial.h5").exists()
    result = json.loads((out / "run" / "eval" / "eval.json").read_text())
    assert result["protocol"]["env"] == "pusht" and result["episodes"] == 3
    assert result["protocol"]["planner"]["iterations"] == 1  # EVAL_ARGS reached lewm eval
    with EpisodeFile(data) as file:
        assert file.image_shape[:2] == (32, 32) and file.num_episodes == 6
        states = file.dataset("state")
        assert states.shape[1] == 7
        for episode in result["per_episode"]:  # each goal is the Push-T state 25 steps after its start
            np.testing.assert_allclose(states[episode["row"] + 25], episode["goal"], atol=1e-4)

    second = _run_script(out)  # a rerun reuses the data and resumes the finished run
    assert f"[1/3] reusing {data}" in second
    assert "vs random" in second
