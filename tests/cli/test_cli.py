"""End-to-end smoke tests of the command line: lewm train, python -m lewm.train, torchrun, lewm params."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lewm.cli.main import run
from lewm.runs import load_checkpoint

TINY = ["--preset", "tiny", "--threads", "1"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_lewm_train_tiny_then_resume_for_more_steps(dots_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert run(["train", "--data", str(dots_file), "--out", str(out), *TINY, "--steps", "6"]) == 0
    assert "step 6/6" in capsys.readouterr().out
    # --resume reads the run's own config.yaml; --steps extends the run
    assert run(["train", "--out", str(out), "--resume", "--steps", "9"]) == 0
    assert "step 9/9" in capsys.readouterr().out
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 9


def test_overrides_reach_the_config(dots_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", str(dots_file), "--out", str(out), *TINY, "--steps", "2",
            "--model.embed-dim", "24", "--objective.sigreg-weight", "0.05", "--optim.batch-size", "8"]
    assert run(args) == 0
    config = load_checkpoint(out / "checkpoints" / "last.pt")["config"]
    assert config["model"]["embed_dim"] == 24
    assert config["objective"]["sigreg_weight"] == 0.05
    assert config["optim"]["batch_size"] == 8
    assert config["objective"]["kind"] == "lewm"


@pytest.mark.parametrize("flag", [["--objective", "pldm"], ["--objective=pldm"], ["--objective.kind", "pldm"]])
def test_objective_pldm_flag(dots_file: Path, tmp_path: Path, flag: list[str]) -> None:
    out = tmp_path / "run"
    args = ["train", "--data", str(dots_file), "--out", str(out), *TINY, "--steps", "2", *flag,
            "--objective.pldm.variance", "5"]
    assert run(args) == 0
    config = load_checkpoint(out / "checkpoints" / "last.pt")["config"]
    assert config["objective"]["kind"] == "pldm" and config["objective"]["pldm"]["variance"] == 5.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.encoder.depth", "0"], "model.encoder.depth = 0 is invalid: must be an integer >= 1"),
        (["--model.encoder.patch-size", "7"], "model.encoder.patch_size = 7 is invalid: must divide image_size 32"),
        (["--optim.lr", "-1"], "optim.lr = -1.0 is invalid: must be > 0"),
        (["--steps", "3", "--epochs", "2"], "pass --steps or --epochs, not both"),
        (["--preset", "huge"], "--preset 'huge' is unknown"),
    ],
)
def test_bad_values_fail_with_one_line(dots_file: Path, tmp_path: Path, capsys, args, message) -> None:
    base = ["train", "--data", str(dots_file), "--out", str(tmp_path / "run"), "--threads", "1"]
    if "--preset" not in args:
        base += ["--preset", "tiny"]
    assert run(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


def test_bad_data_file_fails_with_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not hdf5")
    assert run(["train", "--data", str(bad), "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.h5" in err and len(err.splitlines()) == 1, err


def test_params_prints_paper_sizes(capsys) -> None:
    assert run(["params", "--preset", "paper"]) == 0
    out = capsys.readouterr().out
    counts = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in out.splitlines()[1:]}
    assert 5.0e6 < counts["encoder"] < 6.0e6
    assert 9.0e6 < counts["predictor"] < 12.0e6
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_params_and_demo_flags_parse_with_tyro(capsys) -> None:
    assert run(["params", "--preset", "tiny", "--action-dim", "3"]) == 0
    assert capsys.readouterr().out.startswith("preset tiny (image 32px, action_dim 3)")
    assert run(["params", "--preset=cpu"]) == 0
    assert capsys.readouterr().out.startswith("preset cpu (image 64px, action_dim 2)")
    # the environment is checked before anything is collected
    assert run(["demo", "--env", "moon", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "lewm demo: error: unknown environment 'moon': choose one of two-room, pusht, reacher, cube"


def test_unknown_command_fails(capsys) -> None:
    assert run(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


@pytest.mark.slow
def test_python_m_lewm_train_stops_cleanly_on_sigint(dots_file: Path, tmp_path: Path) -> None:
    """Ctrl-C ends the loop at a step boundary with a checkpoint; --resume carries on from it."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lewm.train", "--data", str(dots_file), "--out", str(out), *TINY,
           "--steps", "100000", "--checkpoint-every", "5", "--no-progress"]
    process = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = out / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert last.exists(), process.communicate()[0]
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "continue with --resume" in output
    step = load_checkpoint(last)["step"]
    assert 5 <= step < 100000
    assert not list(last.parent.glob("*.tmp"))


@pytest.mark.slow
def test_torchrun_two_cpu_processes(dots_file: Path, tmp_path: Path) -> None:
    """The same entry point under torchrun (DDP over gloo): rank 0 writes one run directory."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "lewm.train", "--data", str(dots_file), "--out", str(out), *TINY, "--steps", "6",
           "--device", "cpu"]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    checkpoint = load_checkpoint(out / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 6 and len(checkpoint["rng"]) == 2
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values() if t.is_floating_point())
