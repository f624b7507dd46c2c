"""The reference's Push-T collection policy ("weak") and `lewm collect --env pusht --policy weak`."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm.cli.main import run
from lewm.data.hdf5 import EpisodeFile
from lewm.envs.collect import collect
from lewm.envs.pusht import PushTPhysics, sample_states
from lewm.envs.pusht_expert import simulate_pusht
from lewm.envs.pusht_weak import DIST_CONSTRAINT, weak_actions

SMALL = dict(steps_per_episode=60, image_size=16, progress=False)


def _columns(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as file:
        return {name: file[name][()] for name in file}


# -- the action rule --------------------------------------------------------------------------------------


def test_targets_stay_in_the_box_around_the_block_when_reachable() -> None:
    rng = np.random.default_rng(0)
    agent = rng.uniform(0, 512, size=(5000, 2))
    block = rng.uniform(100, 400, size=(5000, 2))
    draws = rng.uniform(-1, 1, size=(5000, 2))
    actions = weak_actions(draws, agent, block)
    assert actions.dtype == np.float32 and actions.min() >= -1 and actions.max() <= 1
    target = agent + 100.0 * actions.astype(np.float64)
    reachable = np.abs(agent - block) <= 100.0 + DIST_CONSTRAINT  # per axis: one step reaches the box
    assert reachable.mean() > 0.5 and (~reachable).any()
    inside = np.abs(target - block) <= DIST_CONSTRAINT + 1e-3
    assert inside[reachable].all()
    # out of reach the action goes full speed towards the box on that axis
    towards = np.sign(block - agent)
    assert np.array_equal(actions[~reachable], towards[~reachable].astype(np.float32))
    # a draw whose target is already in the box is kept as drawn
    free = (np.abs(agent + 100.0 * draws - block) <= DIST_CONSTRAINT).all(axis=1)
    assert free.any() and np.allclose(actions[free], draws[free], atol=1e-6)
    # and the box really binds: many draws are changed
    assert (~np.isclose(actions, draws, atol=1e-6)).any(axis=1).mean() > 0.2


# -- collection -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weak_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("weak") / "weak.h5"
    return path, collect("pusht", "weak", 6, path, num_envs=4, **SMALL)


def test_collection_writes_a_valid_file_whose_block_moves(weak_file) -> None:
    path, summary = weak_file
    assert summary["policy"] == "weak" and summary["rows"] == 360
    with EpisodeFile(path) as episodes:
        assert episodes.num_episodes == 6 and episodes.image_shape == (16, 16, 3) and episodes.action_dim == 2
    data = _columns(path)
    nan_rows = np.flatnonzero(np.isnan(data["action"]).any(axis=1))
    assert nan_rows.tolist() == list(range(59, 360, 60))
    actions, states = np.delete(data["action"], nan_rows, 0), np.delete(data["state"], nan_rows, 0)
    assert actions.min() >= -1 and actions.max() <= 1
    target = states[:, :2] + 100.0 * actions
    reachable = (np.abs(states[:, :2] - states[:, 2:4]) <= 190.0).all(axis=1)
    assert reachable.mean() > 0.8
    assert (np.abs(target - states[:, 2:4])[reachable] <= DIST_CONSTRAINT + 0.01).all()
    assert np.array_equal(data["proprio"], data["state"][:, [0, 1, 5, 6]])
    # the box keeps the agent at the block: far more windows move it than uniform random actions do (~0.13)
    assert summary["nontrivial_fraction"] > 0.4


def test_same_seed_same_file_whatever_num_envs(weak_file, tmp_path: Path) -> None:
    first = _columns(weak_file[0])
    again = tmp_path / "again.h5"
    collect("pusht", "weak", 6, again, num_envs=64, **SMALL)
    second = _columns(again)
    assert all(np.array_equal(first[k], second[k], equal_nan=k == "action") for k in first)
    states, _ = simulate_pusht(np.arange(6), "weak", 60, 1, 0.0)
    assert not np.array_equal(states.reshape(360, 7), first["state"])


def test_cli_prints_the_block_motion_share(tmp_path: Path, capsys) -> None:
    args = ["collect", "--env", "pusht", "--policy", "weak", "--episodes", "2", "--out", str(tmp_path / "w.h5"),
            "--steps", "40", "--image-size", "8", "--no-progress"]
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 pusht/weak episodes" in printed and "the block moves more than 20 units" in printed


# -- parity with the reference's WeakPolicy --------------------------------------------------------------


def _reference_weak_policy(monkeypatch: pytest.MonkeyPatch, root: Path | None) -> type:
    """The reference's WeakPolicy class, loaded from its file with the package stubbed out (the package
    `__init__` imports torchvision and lance, absent here); skips when stable-worldmodel is not installed.
    `root`: the installed package folder (`reference_root`, which also finds it behind another test's stubs)."""
    if root is None:
        pytest.skip("stable_worldmodel is not installed")
    path = root / "envs" / "pusht" / "expert_policy.py"
    if not path.exists():
        pytest.skip(f"{path} not found")
    policy_module = types.ModuleType("stable_worldmodel.policy")
    policy_module.BasePolicy = type("BasePolicy", (), {"__init__": lambda self, **kwargs: None})
    monkeypatch.setitem(sys.modules, "stable_worldmodel", types.ModuleType("stable_worldmodel"))
    monkeypatch.setitem(sys.modules, "stable_worldmodel.policy", policy_module)
    module_spec = importlib.util.spec_from_file_location("_reference_expert_policy", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.WeakPolicy


def test_actions_match_the_reference_weak_policy_on_the_same_draws(monkeypatch: pytest.MonkeyPatch,
                                                                  env_helper) -> None:
    root = env_helper("reference.py").reference_root()
    reference = _reference_weak_policy(monkeypatch, root)(dist_constraint=100, seed=7)
    physics = PushTPhysics()
    physics.set_state(sample_states(np.random.default_rng(3), 1)[0])
    # a one-environment vector env over our pymunk bodies, shaped as the policy expects
    inner = types.SimpleNamespace(agent=physics.agent, block=physics.block, action_scale=100.0,
                                  action_space=types.SimpleNamespace(shape=(2,)))
    inner.unwrapped = inner
    inner.spec = types.SimpleNamespace(id="swm/PushT-v1")
    reference.set_env(types.SimpleNamespace(envs=[inner], spec=inner.spec,
                                            action_space=types.SimpleNamespace(shape=(1, 2))))
    draws = np.random.default_rng(7)  # the reference policy's generator, replayed
    clipped = 0
    for _ in range(150):
        state = physics.get_state()
        expected = reference.get_action({})[0]
        draw = draws.uniform(-1, 1, size=2)
        ours = weak_actions(draw, state[:2], state[2:4])
        np.testing.assert_array_equal(ours, expected)
        clipped += not np.allclose(ours, draw, atol=1e-6)
        physics.step(ours)
    assert clipped > 10  # the box was exercised, not only the plain random draws
