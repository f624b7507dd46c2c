"""Episode collection into the community HDF5 layout, and a collection killed with SIGKILL that --resume finishes
into the file an uninterrupted run writes (the command-line options and errors: test_collect_cli.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import lewm.envs.collect as collect_module
from lewm.cli.main import run
from lewm.data.hdf5 import COMPLETE_KEY, EpisodeFile, file_attributes
from lewm.envs import TwoRoomEnv, render_frames
from lewm.envs.collect import collect
from lewm.envs.two_room import in_wall
from lewm.errors import LewmError

SMALL = dict(steps_per_episode=40, image_size=32, progress=False)


@pytest.fixture(scope="module")
def expert_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("collect") / "expert.h5"
    summary = collect("two-room", "expert", 6, path, num_envs=4, **SMALL)
    return path, summary


def _columns(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as file:
        return {name: file[name][()] for name in file}


def _same_columns(first: Path, second: Path) -> bool:
    """Both files hold the same datasets with equal values (NaN equal to NaN: each episode's last action)."""
    a, b = _columns(first), _columns(second)
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a)


def test_file_has_the_community_layout(expert_file) -> None:
    path, summary = expert_file
    assert summary["episodes"] == 6 and summary["rows"] == 240
    with EpisodeFile(path) as episodes:
        assert episodes.num_episodes == 6 and episodes.num_rows == 240
        assert episodes.image_shape == (32, 32, 3) and episodes.action_dim == 2
        assert set(episodes.columns) == {
            "pixels", "action", "proprio", "state", "episode_idx", "step_idx", "ep_len", "ep_offset"
        }
        assert episodes.ep_len.tolist() == [40] * 6
        assert episodes.ep_offset.tolist() == list(range(0, 240, 40))
    data = _columns(path)
    assert data["pixels"].dtype == np.uint8
    assert data["action"].dtype == np.float32 and data["state"].dtype == np.float32
    assert np.array_equal(data["proprio"], data["state"])


def test_nan_exactly_on_each_last_action(expert_file) -> None:
    data = _columns(expert_file[0])
    nan_rows = np.flatnonzero(np.isnan(data["action"]).any(axis=1))
    assert nan_rows.tolist() == [39, 79, 119, 159, 199, 239]
    assert np.isnan(data["action"][nan_rows]).all()
    finite = np.delete(data["action"], nan_rows, axis=0)
    assert finite.min() >= -1 and finite.max() <= 1


def test_frames_states_and_actions_agree_with_the_environment(expert_file) -> None:
    data = _columns(expert_file[0])
    assert np.array_equal(data["pixels"], render_frames(data["state"], 32))
    assert not in_wall(data["state"]).any()
    # replaying an episode's actions in the environment reproduces its states and frames
    env = TwoRoomEnv(image_size=32)
    env.reset(options={"state": data["state"][40]})
    for t in range(40, 79):
        obs, *_ = env.step(data["action"][t])
        assert np.allclose(obs["proprio"], data["state"][t + 1], atol=1e-4)
    # the env simulates in float64 from a float32 start: a blob pixel may differ by one rounding level at most
    assert np.abs(env.render().astype(int) - data["pixels"][79]).max() <= 1


def test_same_seed_same_content_whatever_num_envs(expert_file, tmp_path: Path) -> None:
    path, _ = expert_file
    again = tmp_path / "again.h5"
    collect("two-room", "expert", 6, again, num_envs=64, **SMALL)
    first, second = _columns(path), _columns(again)
    assert all(np.array_equal(first[k], second[k], equal_nan=k == "action") for k in first)
    other = tmp_path / "other.h5"
    collect("two-room", "expert", 6, other, seed=1, **SMALL)
    assert not np.array_equal(_columns(other)["state"], first["state"])


def test_existing_file_is_refused_unless_overwrite_or_append(expert_file, tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    collect("two-room", "random", 2, path, **SMALL)
    before = path.read_bytes()
    with pytest.raises(LewmError, match="file exists"):
        collect("two-room", "random", 2, path, **SMALL)
    assert path.read_bytes() == before
    collect("two-room", "random", 3, path, mode="w", **SMALL)
    with EpisodeFile(path) as episodes:
        assert episodes.num_episodes == 3
    collect("two-room", "random", 2, path, mode="a", **SMALL)
    with EpisodeFile(path) as episodes:
        assert episodes.num_episodes == 5 and episodes.ep_offset[-1] == 160
    data = _columns(path)
    # appended episodes continue the seed's sequence rather than repeating episodes 0 and 1
    assert not np.array_equal(data["state"][120:200], data["state"][:80])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(env_name="nope"), "unknown environment 'nope': choose one of two-room"),
        (dict(policy="greedy"), "unknown policy 'greedy'"),
        (dict(policy="weak"), "policy 'weak' is for pusht only, not 'two-room'"),
        (dict(episodes=0), "episodes = 0 is invalid"),
        (dict(steps_per_episode=-3), "steps_per_episode = -3 is invalid"),
        (dict(noise_std=-1.0), "noise_std = -1.0 is invalid"),
        (dict(mode="q"), "mode = 'q' is invalid"),
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = dict(env_name="two-room", policy="expert", episodes=1, out=tmp_path / "x.h5", progress=False)
    args.update(kwargs)
    with pytest.raises(LewmError, match=message):
        collect(**args)
    assert not (tmp_path / "x.h5").exists()


def test_expert_windows_are_rarely_trivial(tmp_path: Path) -> None:
    summary = collect("two-room", "expert", 48, tmp_path / "e.h5", steps_per_episode=100, image_size=8,
                      progress=False)
    assert summary["nontrivial_fraction"] > 0.7
    short = collect("two-room", "expert", 1, tmp_path / "s.h5", steps_per_episode=20, image_size=8,
                    progress=False)
    assert short["nontrivial_fraction"] is None


# -- interrupted collections and --resume ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 random episodes in one go: what every resumed file below must equal."""
    path = tmp_path_factory.mktemp("whole") / "whole.h5"
    collect("two-room", "random", 7, path, num_envs=3, **SMALL)
    return path


def test_the_file_records_the_settings(uninterrupted: Path) -> None:
    attrs = file_attributes(uninterrupted)
    assert attrs == {
        "complete_episodes": 7, "collect_env": "two-room", "collect_policy": "random", "collect_steps": 40,
        "collect_image_size": 32, "collect_seed": 0, "collect_noise_std": 1.0, "collect_compression": "none",
    }


def test_resume_after_a_failure_equals_an_uninterrupted_run(uninterrupted: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "resumed.h5"
    real = collect_module.simulate_episodes
    calls = []

    def fail_on_the_third_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(collect_module, "simulate_episodes", fail_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        collect("two-room", "random", 7, path, num_envs=2, **SMALL)
    with EpisodeFile(path) as episodes:
        assert episodes.num_episodes == 4  # two committed batches of 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.h5"]
    monkeypatch.setattr(collect_module, "simulate_episodes", real)
    summary = collect("two-room", "random", 7, path, mode="resume", num_envs=2, **SMALL)
    assert summary["first_episode"] == 4 and summary["episodes"] == 3
    assert _same_columns(path, uninterrupted)
    again = collect("two-room", "random", 7, path, mode="resume", **SMALL)  # complete already: nothing to do
    assert again["episodes"] == 0 and again["nontrivial_fraction"] is None and _same_columns(path, uninterrupted)


def test_resume_starts_a_missing_file_and_one_without_a_complete_episode(uninterrupted: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.h5"
    collect("two-room", "random", 7, missing, mode="resume", **SMALL)
    assert _same_columns(missing, uninterrupted)
    empty = tmp_path / "empty.h5"  # what a run killed before its first commit leaves
    with h5py.File(empty, "w") as file:
        file.attrs["complete_episodes"] = 0
    collect("two-room", "random", 7, empty, mode="resume", **SMALL)
    assert _same_columns(empty, uninterrupted)
    zero_bytes = tmp_path / "zero.h5"
    zero_bytes.touch()
    collect("two-room", "random", 7, zero_bytes, mode="resume", **SMALL)
    assert _same_columns(zero_bytes, uninterrupted)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(image_size=16), "the file was collected with image_size = 32, not 16"),
        (dict(steps_per_episode=30), "the file was collected with steps = 40, not 30"),
        (dict(seed=3), "the file was collected with seed = 0, not 3"),
        (dict(policy="expert"), "the file was collected with policy = 'random', not 'expert'"),
        (dict(noise_std=0.5), "the file was collected with noise_std = 1.0, not 0.5"),
        (dict(compression="gzip"), "the file was collected with compression = 'none', not 'gzip'"),
        (dict(env_name="pusht"), "the file was collected with env = 'two-room', not 'pusht'"),
        (dict(episodes=2), "the file holds 3 episodes, more than episodes = 2"),
    ],
)
def test_resume_with_other_settings_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    path = tmp_path / "partial.h5"
    collect("two-room", "random", 3, path, **SMALL)
    before = _columns(path)
    args = dict(env_name="two-room", policy="random", episodes=7, out=path, mode="resume", **SMALL)
    with pytest.raises(LewmError, match=re.escape(f"{path}: cannot resume: {message}")):
        collect(**{**args, **change})
    after = _columns(path)
    assert all(np.array_equal(before[k], after[k], equal_nan=True) for k in before)


def test_resume_needs_recorded_settings(tmp_path: Path) -> None:
    path = tmp_path / "foreign.h5"
    collect("two-room", "random", 2, path, **SMALL)
    collect("two-room", "random", 1, path, mode="a", seed=5, **SMALL)  # mixed settings: the record goes
    assert not any(key.startswith("collect_") for key in file_attributes(path))
    with pytest.raises(LewmError, match="cannot resume: the file records no collect settings"):
        collect("two-room", "random", 5, path, mode="resume", **SMALL)


def test_append_with_the_same_settings_keeps_the_record(uninterrupted: Path, tmp_path: Path) -> None:
    path = tmp_path / "grown.h5"
    collect("two-room", "random", 4, path, **SMALL)
    collect("two-room", "random", 3, path, mode="a", **SMALL)
    assert file_attributes(path) == file_attributes(uninterrupted)
    assert _same_columns(path, uninterrupted)


def _complete_episodes(path: Path) -> int:
    """The committed episode count of a file another process is writing, 0 while it cannot be read yet.
    HDF5 locks a file open for writing; only its root attribute is read here, without the lock."""
    try:
        with h5py.File(path, "r", locking=False) as file:
            return int(file.attrs.get(COMPLETE_KEY, 0))
    except (OSError, KeyError, ValueError, RuntimeError):
        return 0


@pytest.mark.slow
def test_sigkill_mid_collection_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """kill -9 once the file holds 20 episodes (one committed per batch of --num-envs 1, with 380 to go): the file
    opens and holds only complete episodes, equal to the first ones of an uninterrupted run, nothing else is left
    in the folder, and --resume completes it."""
    episodes, steps = 400, 20
    reference = tmp_path / "reference" / "whole.h5"
    reference.parent.mkdir()
    collect("two-room", "expert", episodes, reference, steps_per_episode=steps, image_size=8, progress=False)
    out = tmp_path / "killed" / "data.h5"
    out.parent.mkdir()
    args = ["collect", "--env", "two-room", "--policy", "expert", "--episodes", str(episodes), "--out", str(out),
            "--steps", str(steps), "--image-size", "8", "--num-envs", "1", "--no-progress"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "lewm.cli.main", *args], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while _complete_episodes(out) < 20 and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, output  # killed, not finished

    with EpisodeFile(out) as file:
        kept, rows = file.num_episodes, file.num_rows
    assert 20 <= kept < episodes, "the kill did not land mid-run"
    assert [p.name for p in out.parent.iterdir()] == ["data.h5"]  # no temporary file
    whole, cut = _columns(reference), _columns(out)
    for name in ("pixels", "action", "proprio", "state", "episode_idx", "step_idx"):
        assert np.array_equal(cut[name][:rows], whole[name][:rows], equal_nan=True), name
    assert np.array_equal(cut["ep_len"][:kept], whole["ep_len"][:kept])

    assert run([*args, "--resume"]) == 0
    assert _same_columns(out, reference)
    assert [p.name for p in out.parent.iterdir()] == ["data.h5"]
