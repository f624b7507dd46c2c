"""lewm probe: linear and MLP probes from frozen embeddings, on a Two-Room model trained inside the tests."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm.analysis.probe import ProbeConfig, parse_target, probe
from lewm.cli.main import run
from lewm.envs.collect import collect
from lewm.errors import LewmError

FAST = ProbeConfig(max_frames=1500, mlp_hidden=64, mlp_epochs=60)


@pytest.mark.parametrize(
    ("target", "column", "dims"),
    [("state", "state", [0, 1, 2]), ("state[0:2]", "state", [0, 1]), ("state[2]", "state", [2]),
     ("proprio[1:]", "proprio", [1, 2]), ("state[:1]", "state", [0])],
)
def test_parse_target(target: str, column: str, dims: list[int]) -> None:
    name, selection = parse_target(target)
    assert name == column and np.arange(3)[selection].tolist() == dims


@pytest.mark.parametrize("target", ["state[", "state[]", "1state", "state[a:b]"])
def test_bad_targets_raise(target: str) -> None:
    with pytest.raises(LewmError, match="target"):
        parse_target(target)


def test_agent_position_is_read_back_far_better_than_a_shuffled_control(tworoom_run, tmp_path: Path) -> None:
    data, run_dir = tworoom_run
    result = probe(run_dir, ["proprio"], config=FAST)
    linear, mlp = result["proprio"]["linear"], result["proprio"]["mlp"]
    assert result["proprio"]["dims"] == 2 and len(linear["r_per_dim"]) == 2
    # REFERENCE 8: LeWM's agent position is linearly decodable (paper r 0.996); measured here 0.978 at 1500 steps
    assert linear["r"] > 0.9 and mlp["r"] > 0.9, result
    assert linear["mse"] < 0.2
    meta = result["_meta"]
    assert meta["train_frames"] + meta["test_frames"] == 1500 and meta["test_episodes"] == 6
    # the same probe on a copy of the file whose positions are shuffled across frames learns nothing
    shuffled = tmp_path / "shuffled.h5"
    with h5py.File(data) as source, h5py.File(shuffled, "w") as copy:
        for name, item in source.items():
            copy.create_dataset(name, data=item[:])
        copy["proprio"][:] = np.random.default_rng(0).permutation(source["proprio"][:])
    control = probe(run_dir, ["proprio"], data_path=shuffled, config=FAST)["proprio"]["linear"]
    assert abs(control["r"]) < 0.2 and control["mse"] > 0.9


def test_cli_prints_and_writes_json(tworoom_run, tmp_path: Path, capsys) -> None:
    _, run_dir = tworoom_run
    out = tmp_path / "probe.json"
    args = ["probe", "--run", str(run_dir), "--target", "state[0:1]", "proprio", "--json", str(out),
            "--max-frames", "800", "--mlp-hidden", "32", "--mlp-epochs", "30"]
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "state[0:1]" in printed and "proprio" in printed and "linear: MSE" in printed
    numbers = json.loads(out.read_text())
    for target in ("state[0:1]", "proprio"):
        assert set(numbers[target]["linear"]) >= {"mse", "r"} and set(numbers[target]["mlp"]) >= {"mse", "r"}


def test_missing_run_column_and_too_few_episodes_are_one_line(tworoom_run, tmp_path: Path, capsys) -> None:
    data, run_dir = tworoom_run
    assert run(["probe", "--run", str(tmp_path / "nope")]) == 2
    assert "run directory does not exist" in capsys.readouterr().err
    assert run(["probe", "--run", str(run_dir), "--target", "velocity"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no column 'velocity' to probe" in err and len(err.splitlines()) == 1
    assert run(["probe", "--run", str(run_dir), "--target", "state[5:7]"]) == 2
    assert "selects no dimension" in capsys.readouterr().err
    single = tmp_path / "one.h5"
    collect("two-room", "expert", 1, single, steps_per_episode=40, image_size=32, seed=0, progress=False)
    assert run(["probe", "--run", str(run_dir), "--data", str(single)]) == 2
    assert "probing needs at least 2" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--test-fraction", "1.5", "test_fraction = 1.5 is invalid: must be in (0, 1)"),
    ("--mlp-hidden", "0", "mlp_hidden = 0 is invalid: must be an integer >= 1"),
    ("--ridge-alpha", "-1", "ridge_alpha = -1.0 is invalid: must be >= 0"),
])
def test_bad_probe_settings_are_named_before_anything_loads(tmp_path: Path, capsys, flag: str, value: str,
                                                            message: str) -> None:
    assert run(["probe", "--run", str(tmp_path / "no_run"), flag, value]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
