"""Episode collection into the community HDF5 layout, and the `lewm collect` command."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm.cli.main import run
from lewm.data.hdf5 import EpisodeFile
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


# -- command line --------------------------------------------------------------------------------------


def test_cli_collects(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.h5"
    args = ["collect", "--env", "two-room", "--policy", "random", "--episodes", "3", "--out", str(out),
            "--steps", "30", "--image-size", "16", "--no-progress"]
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 two-room/random episodes (90 rows, 16 px)" in printed
    with EpisodeFile(out) as episodes:
        assert episodes.num_episodes == 3 and episodes.image_shape == (16, 16, 3)
    assert run([*args, "--append"]) == 0
    with EpisodeFile(out) as episodes:
        assert episodes.num_episodes == 6


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "greedy"], "unknown policy 'greedy'"),
        (["--policy", "weak", "--env", "two-room"], "policy 'weak' is for pusht only"),
        (["--policy", "expert", "--episodes", "0"], "episodes = 0 is invalid"),
        (["--policy", "expert", "--env", "cube"], "unknown environment 'cube': choose one of two-room, pusht"),
        (["--policy", "expert", "--episodes", "two"], "invalid int value"),
        (["--policy", "expert", "--overwrite", "--append"], "not allowed with argument"),
    ],
)
def test_cli_bad_values_exit_2_with_one_line(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    args = ["collect", "--episodes", "1", "--out", str(tmp_path / "c.h5"), "--image-size", "8", *extra]
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_cli_refuses_an_existing_out(tmp_path: Path, capsys) -> None:
    out = tmp_path / "exists.h5"
    out.write_bytes(b"precious")
    args = ["collect", "--policy", "expert", "--episodes", "1", "--out", str(out), "--no-progress"]
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert "file exists; pass --overwrite" in err and "\n" not in err
    assert out.read_bytes() == b"precious"
