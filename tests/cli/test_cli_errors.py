"""Every command line a user gets wrong ends in one stderr line naming the option and the value, exit status 2:
tyro's type errors, missing required options, unknown options and values our own checks reject."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lewm.cli.main import run


def one_error_line(argv: list[str], capsys) -> str:
    """Run `lewm ARGV`, which must fail with status 2, nothing on stdout and one line on stderr; that line."""
    assert run(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and not captured.out, captured.err + captured.out
    assert lines[0].startswith(f"lewm {argv[0]}: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # tyro: a value of the wrong type, with or without '=', in a nested group, through lambda-search
        (["train", "--data", "x.h5", "--out", "OUT", "--steps", "abc"], "--steps: 'abc' is not an integer or None"),
        (["train", "--data", "x.h5", "--out", "OUT", "--optim.lr=fast"], "--optim.lr: 'fast' is not a number"),
        (["probe", "--run", "r", "--mlp-hidden", "2.5"], "--mlp-hidden: '2.5' is not an integer"),
        (["lambda-search", "--data", "x.h5", "--out", "OUT", "--steps", "abc"], "--steps: 'abc' is not an integer"),
        # tyro: a value outside the choices, a flag without its value
        (["train", "--data", "x.h5", "--out", "OUT", "--precision", "fp8"], "--precision: 'fp8' is not one of auto"),
        (["params", "--preset", "huge"], "--preset: 'huge' is not one of paper, cpu, tiny"),
        (["train", "--data", "x.h5", "--out", "OUT", "--steps"], "--steps: expects an integer or None, got no value"),
        (["train", "--data", "x.h5", "--preset"], "--preset: expects one of paper, cpu, tiny, got no value"),
        (["eval", "--run", "r", "--env"], "--env: expects text, got no value"),
        (["demo", "--out"], "--out: expects a path or None, got no value"),
        # missing required options and positionals
        (["eval"], "--run: required, not given"),
        (["import"], "SRC, --out: required, not given"),
        (["import", "some/folder"], "--out: required, not given"),
        (["export", "run"], "--out: required, not given"),
        (["train"], "--data: required, not given"),
        (["train", "--data", "x.h5"], "--out: required, not given"),
        # unknown options
        (["eval", "--run", "r", "--bogus", "3"], "--bogus '3': unrecognized"),
        (["train", "--data", "x.h5", "--out", "OUT", "--pre", "tiny"], "--pre 'tiny': unrecognized"),
        (["params", "--action_dim", "2", "--colour", "red"], "--colour 'red': unrecognized"),
        # our own checks
        (["eval", "--run", "r", "--elites", "1"], "planner.elites = 1 is invalid: must be >= 2"),
        (["probe", "--run", "r", "--device", "gpu"], "device = 'gpu' is invalid"),
    ],
)
def test_bad_command_lines_fail_with_one_line(argv: list[str], expected: str, capsys, tmp_path: Path,
                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written, and relative paths land here
    line = one_error_line(argv, capsys)
    assert expected in line, line
    assert not (tmp_path / "OUT").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_one_line(capsys, tmp_path: Path) -> None:
    line = one_error_line(["straightness", "--run", str(tmp_path), "--device", "cuda"], capsys)
    assert "device = 'cuda' but CUDA is not available" in line


def test_help_still_prints_the_full_help(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--steps" in out and "--model.encoder.depth" in out and "--preset" in out
    for command in ("demo", "params", "eval"):
        with pytest.raises(SystemExit):
            run([command, "--help"])
        assert "--help" in capsys.readouterr().out


def test_console_script_prints_one_line(tmp_path: Path) -> None:
    """The installed entry point, as a user runs it: no box, no traceback."""
    done = subprocess.run([sys.executable, "-c", "from lewm.cli.main import main; main()", "train", "--data",
                           "x.h5", "--out", str(tmp_path / "run"), "--steps", "abc"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}, timeout=120)
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.splitlines() == ["lewm train: error: --steps: 'abc' is not an integer or None"]
