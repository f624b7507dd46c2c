"""lewm probe: linear and MLP probes from frozen embeddings, on a Two-Room model trained inside the tests."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm.analysis.probe import ProbeConfig, fit_probes, parse_probe_target, parse_target, probe
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


@pytest.mark.parametrize("target", ["state[", "state[]", "1state", "state[a:b]", "sincos(state)", "sincos(state[0:2])",
                                    "sincos(state[])", "sincos(state[4]", "sincos()", "sincos(sincos(state[1]))"])
def test_bad_targets_raise(target: str) -> None:
    with pytest.raises(LewmError, match=f"target {re.escape(repr(target))} is invalid"):
        parse_target(target)


@pytest.mark.parametrize(("target", "column", "index"), [("sincos(state[4])", "state", 4),
                                                         ("sincos( proprio[0] )", "proprio", 0)])
def test_parse_sincos_target(target: str, column: str, index: int) -> None:
    parsed = parse_probe_target(target)
    assert parsed.sincos and parsed.column == column and np.arange(6)[parsed.dims].tolist() == [index]
    assert not parse_probe_target("state[4]").sincos
    angles = np.array([[0.0, 9.0], [np.pi / 2, 9.0]])
    assert np.allclose(parsed.values(angles[:, :1]), [[1.0, 0.0], [0.0, 1.0]], atol=1e-12)


def test_a_wrapping_angle_is_read_back_as_sincos_but_not_raw() -> None:
    """Features holding cos/sin of an angle uniform in [0, 2 pi): the (cos, sin) probe recovers it almost exactly,
    while the raw angle, which jumps from 2 pi to 0, is only partly linear in them (r about 0.78)."""
    rng = np.random.default_rng(0)
    angle = rng.uniform(0.0, 2 * np.pi, size=3000)
    features = np.column_stack([np.cos(angle), np.sin(angle), rng.standard_normal((3000, 6))])
    features += 0.02 * rng.standard_normal(features.shape)
    features = (features - features.mean(0)) / features.std(0)
    is_test = np.arange(3000) >= 2400
    config = ProbeConfig(fit_mlp=False)
    sincos = fit_probes(features, parse_probe_target("sincos(state[0])").values(angle[:, None]), is_test, config,
                        sincos=True)
    raw = fit_probes(features, angle[:, None], is_test, config)
    assert sincos["dims"] == 2 and len(sincos["linear"]["r_per_dim"]) == 2 and raw["dims"] == 1
    assert sincos["linear"]["r"] > 0.99, sincos
    assert raw["linear"]["r"] < 0.85, raw
    assert sincos["linear"]["angle_median_abs_rad"] < 0.05 and sincos["linear"]["angle_rmse_rad"] < 0.1
    assert "angle_rmse_rad" not in raw["linear"]
    # the angle errors are wrapped: a probe off by 2 pi - 0.01 rad is 0.01 rad off, not 6.27
    shuffled = fit_probes(features, np.column_stack([np.cos(angle), np.sin(angle)])[rng.permutation(3000)],
                          is_test, config, sincos=True)
    assert shuffled["linear"]["r"] < 0.1 and 1.2 < shuffled["linear"]["angle_median_abs_rad"] <= np.pi


def test_agent_position_is_read_back_far_better_than_a_shuffled_control(tworoom_run, tmp_path: Path) -> None:
    data, run_dir = tworoom_run
    result = probe(run_dir, ["proprio"], config=FAST)
    linear, mlp = result["proprio"]["linear"], result["proprio"]["mlp"]
    assert result["proprio"]["dims"] == 2 and len(linear["r_per_dim"]) == 2
    # docs/reference.md section 8: LeWM's agent position is linearly decodable (paper r 0.996)
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
    args = ["probe", "--run", str(run_dir), "--target", "state[0:1]", "proprio", "sincos(state[1])", "--json", str(out),
            "--max-frames", "800", "--mlp-hidden", "32", "--mlp-epochs", "30"]
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "state[0:1]" in printed and "proprio" in printed and "linear: MSE" in printed
    numbers = json.loads(out.read_text())
    for target in ("state[0:1]", "proprio", "sincos(state[1])"):
        assert set(numbers[target]["linear"]) >= {"mse", "r"} and set(numbers[target]["mlp"]) >= {"mse", "r"}
    # a sincos target regresses (cos, sin) and reports the angle error read back from them
    assert numbers["sincos(state[1])"]["dims"] == 2 and "angle error median" in printed
    assert set(numbers["sincos(state[1])"]["mlp"]) >= {"angle_rmse_rad", "angle_median_abs_rad"}


def test_missing_run_column_and_too_few_episodes_are_one_line(tworoom_run, tmp_path: Path, capsys) -> None:
    data, run_dir = tworoom_run
    assert run(["probe", "--run", str(tmp_path / "nope")]) == 2
    assert "run directory does not exist" in capsys.readouterr().err
    assert run(["probe", "--run", str(tmp_path / "nope"), "--target", "sincos(state[1:3])"]) == 2
    err = capsys.readouterr().err.strip()
    assert "target 'sincos(state[1:3])' is invalid: use sincos(COLUMN[INDEX])" in err and len(err.splitlines()) == 1
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
