"""lewm.envs.cube and lewm.envs.cube_expert: the gymnasium API (shapes, state round trips, goals, the success
threshold, rendering at any size, one-line errors), the reference quirks the API exposes, and the collector's
episodes (the oracle moves the cube, determinism, replaying stored actions reproduces the states).

Side-by-side parity with the reference is in test_cube_parity.py. Frames here are small and mostly without
shadows: with shadows MuJoCo renders a 4096 px shadow map per frame on the CPU (about 0.15 s at any size).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from lewm.envs.cube import (
    CUBE_QPOS,
    OBSERVATION_DIM,
    PROPRIO_DIM,
    STATE_DIM,
    CubeEnv,
    render_frames,
)
from lewm.envs.cube_expert import simulate_cube, window_fractions
from lewm.envs.cube_scene import ARM_START, OBJECT_SAMPLING_BOUNDS, TARGET_SAMPLING_BOUNDS
from lewm.errors import LewmError

MISSING = [name for name in ("mujoco", "dm_control", "ogbench") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs the [mujoco] extra: {MISSING} not installed")
# (found without importing them: MuJoCo must first be imported by lewm, which sets the headless GL backend)

ORACLE_KEYS = ("proprio/effector_pos", "proprio/effector_yaw", "proprio/gripper_opening", "proprio/gripper_contact",
               "privileged/target_block", "privileged/block_0_pos", "privileged/block_0_yaw",
               "privileged/target_block_pos", "privileged/target_block_yaw", "privileged/target_task")


@pytest.fixture(scope="module")
def env() -> CubeEnv:
    """A small environment without shadows (fast frames); tests reset it as they need."""
    return CubeEnv(image_size=16, max_episode_steps=3, shadows=False)


@pytest.fixture(scope="module")
def episodes() -> tuple[np.ndarray, ...]:
    """Two expert episodes of 60 steps (seed 5): states, actions, observations, proprio."""
    return simulate_cube(np.array([0, 1]), "expert", 60, 5, 0.1)


def _one_line_error(call, *fragments: str) -> None:
    with pytest.raises(LewmError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# -- API -------------------------------------------------------------------------------------------------------


def test_reset_and_step_give_the_declared_shapes_rewards_and_flags(env: CubeEnv) -> None:
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    assert env.action_space.shape == (5,) and env.action_space.dtype == np.float32
    assert observation["proprio"].shape == (PROPRIO_DIM,) == (19,)
    assert info["observation"].shape == (OBSERVATION_DIM,) and info["observation"].dtype == np.float32
    np.testing.assert_array_equal(observation["proprio"], info["observation"][:PROPRIO_DIM])
    assert info["state"].shape == (STATE_DIM,) and info["state"].dtype == np.float64
    assert set(ORACLE_KEYS) <= set(info)
    flags = []
    for _ in range(3):
        observation, reward, terminated, truncated, info = env.step(np.zeros(5, dtype=np.float32))
        assert observation["pixels"].shape == (16, 16, 3) and observation["pixels"].dtype == np.uint8
        assert reward == (1.0 if info["success"] else 0.0) and terminated == info["success"]
        assert info["cube_distance"] == pytest.approx(np.linalg.norm(info["state"][CUBE_QPOS] - env.get_target()))
        flags.append(truncated)
    assert flags == [False, False, True]


def test_reset_draws_the_reference_start_and_depends_on_the_seed(env: CubeEnv) -> None:
    _, info = env.reset(seed=3)
    first, target = env.get_state(), env.get_target()
    env.reset(seed=3)
    np.testing.assert_array_equal(env.get_state(), first)
    np.testing.assert_array_equal(env.get_target(), target)
    cube = first[CUBE_QPOS]
    assert cube[2] == 0.02 and target[2] == 0.02
    assert (OBJECT_SAMPLING_BOUNDS[0] <= cube[:2]).all() and (cube[:2] <= OBJECT_SAMPLING_BOUNDS[1]).all()
    assert (TARGET_SAMPLING_BOUNDS[0] <= target[:2]).all() and (target[:2] <= TARGET_SAMPLING_BOUNDS[1]).all()
    np.testing.assert_allclose(info["proprio/effector_pos"], ARM_START, atol=1e-3)  # the IK's tolerance
    assert not first[21:].any()  # at rest
    env.reset(seed=4)
    assert not np.array_equal(env.get_state(), first)


def test_set_state_round_trips_and_makes_the_future_a_function_of_the_state(env: CubeEnv) -> None:
    env.reset(seed=1)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(4, 5)).astype(np.float32)
    for action in actions[:2]:
        env.step(action)
    middle = env.get_state()
    env.set_state(middle)
    np.testing.assert_array_equal(env.get_state(), middle)
    runs = []
    for _ in range(2):
        env.set_state(middle)
        for action in actions[2:]:
            env.step(action)
        runs.append(env.get_state())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_the_action_starts_from_the_stale_pinch_pose_which_set_state_refreshes(env: CubeEnv) -> None:
    """Reference quirk: after a step the effector pose (observation and control) is the one computed at the start
    of the last substep; set_state (mj_forward) refreshes it without moving anything."""
    env.reset(seed=2)
    _, _, _, _, info = env.step(np.array([1, 1, -1, 1, 0], dtype=np.float32))
    stale = info["proprio/effector_pos"]
    state = env.get_state()
    env.set_state(state)
    fresh = env.current_info()["proprio/effector_pos"]
    assert 1e-6 < np.abs(fresh - stale).max() < 0.01  # the arm moves a few mm in one 2 ms substep
    np.testing.assert_array_equal(env.get_state(), state)


def test_out_of_range_actions_are_clipped(env: CubeEnv) -> None:
    ends = []
    for scale in (1.0, 3.0):
        env.reset(seed=6)
        env.step(np.array([1, -1, 1, -1, 1], dtype=np.float32) * scale)
        ends.append(env.get_state())
    np.testing.assert_array_equal(ends[0], ends[1])


def test_set_goal_state_takes_a_position_or_a_state_and_leaves_the_state_alone(env: CubeEnv) -> None:
    env.reset(seed=7)
    state = env.get_state()
    env.set_goal_state([0.4, 0.1, 0.02])
    np.testing.assert_array_equal(env.get_state(), state)
    np.testing.assert_array_equal(env.get_target(), [0.4, 0.1, 0.02])
    implied = env.get_goal_state()  # the current state with the cube at the target
    np.testing.assert_array_equal(implied[CUBE_QPOS], [0.4, 0.1, 0.02])
    np.testing.assert_array_equal(np.delete(implied, np.r_[14:21]), np.delete(state, np.r_[14:21]))
    goal = state.copy()
    goal[CUBE_QPOS] = [0.5, -0.2, 0.06]
    env.set_goal_state(goal)
    np.testing.assert_array_equal(env.get_state(), state)
    np.testing.assert_array_equal(env.get_goal_state(), goal)
    np.testing.assert_array_equal(env.get_target(), [0.5, -0.2, 0.06])
    env.reset(options={"state": state, "goal_state": goal})
    np.testing.assert_array_equal(env.get_state(), state)
    np.testing.assert_array_equal(env.get_goal_state(), goal)
    assert env.current_info()["cube_distance"] == pytest.approx(np.linalg.norm(goal[CUBE_QPOS] - state[CUBE_QPOS]))


def test_is_success_is_inclusive_at_four_centimetres_for_pairs_and_batches() -> None:
    state = np.zeros(STATE_DIM)
    assert CubeEnv.is_success(state, np.array([0.04, 0.0, 0.0])) is True
    assert CubeEnv.is_success(state, np.array([np.nextafter(0.04, 1.0), 0.0, 0.0])) is False
    goals = np.zeros((3, STATE_DIM))
    goals[:, 14] = [0.0, 0.03, 0.05]
    np.testing.assert_array_equal(CubeEnv.is_success(np.zeros((3, STATE_DIM)), goals), [True, True, False])
    np.testing.assert_array_equal(CubeEnv.is_success(goals, np.zeros(3)), [True, True, False])
    assert CubeEnv.is_success(goals[2], goals[2]) is True


def test_render_works_at_any_size_without_disturbing_the_state() -> None:
    env = CubeEnv(image_size=37, shadows=False)
    env.reset(seed=0)
    state = env.get_state()
    frame = env.render()
    assert frame.shape == (37, 37, 3) and frame.dtype == np.uint8 and frame.std() > 5
    np.testing.assert_array_equal(frame, render_frames(state[None], 37, shadows=False)[0])
    other = state.copy()
    other[CUBE_QPOS] = [0.5, 0.25, 0.02]
    assert not np.array_equal(env.render_state(other), frame)
    np.testing.assert_array_equal(env.get_state(), state)
    large = render_frames(np.stack([state, other]), 300, shadows=False)
    assert large.shape == (2, 300, 300, 3) and not np.array_equal(large[0], large[1])
    huge = render_frames(state[None], 700, shadows=False)  # beyond MuJoCo's default 640 x 480 offscreen buffer
    assert huge.shape == (1, 700, 700, 3) and huge.std() > 5


def test_goal_observation_draws_the_goal_state_without_the_target(env: CubeEnv) -> None:
    env.reset(seed=8, options={"goal_state": [0.5, 0.25, 0.02]})
    goal_frame = env.goal_observation()
    np.testing.assert_array_equal(goal_frame, render_frames(env.get_goal_state()[None], 16, shadows=False)[0])
    assert not np.array_equal(goal_frame, env.render())
    same = env.get_state()
    env.set_target(same[CUBE_QPOS], same[17:21])  # the target on the cube: the goal frame is the current frame
    np.testing.assert_array_equal(env.goal_observation(), env.render())  # the transparent target is not drawn


def test_shadows_and_cube_colour_change_the_pixels_and_the_colour_is_restored(env: CubeEnv) -> None:
    env.reset(seed=9)
    state = env.get_state()[None]
    plain = render_frames(state, 24, shadows=False)
    assert not np.array_equal(render_frames(state, 24, shadows=True), plain)
    blue = render_frames(state, 24, shadows=False, cube_rgba=(0.1, 0.2, 0.9, 1.0))
    changed = (blue != plain).any(axis=-1)
    assert 0 < changed.mean() < 0.1  # the cube's pixels only
    np.testing.assert_array_equal(render_frames(state, 24, shadows=False), plain)


def test_bad_values_are_one_line_errors_naming_them(env: CubeEnv) -> None:
    env.reset(seed=0)
    _one_line_error(lambda: env.set_state(np.zeros(40)), "state", "(40,)", "(41,)")
    bad = env.get_state()
    bad[3] = np.nan
    _one_line_error(lambda: env.set_state(bad), "state[3] = nan", "not finite")
    zero_quaternion = env.get_state()
    zero_quaternion[17:21] = 0
    _one_line_error(lambda: env.set_state(zero_quaternion), "quaternion")
    _one_line_error(lambda: env.step(np.zeros(4)), "action", "(4,)", "(5,)")
    _one_line_error(lambda: env.step([0, 0, np.inf, 0, 0]), "action[2] = inf")
    _one_line_error(lambda: env.set_goal_state([0.1, 0.2]), "goal_state", "(2,)", "(3,) or (41,)")
    _one_line_error(lambda: env.reset(options={"start": None}), "'start'")
    _one_line_error(lambda: CubeEnv(image_size=0), "image_size = 0")
    _one_line_error(lambda: CubeEnv(shadows="yes"), "shadows = 'yes'")
    _one_line_error(lambda: render_frames(np.zeros((2, 40)), 8), "(2, 40)", "(T, 41)")
    _one_line_error(lambda: render_frames(np.zeros((1, 41)), 8, cube_rgba=(1, 0, 0)), "cube_rgba")
    _one_line_error(lambda: CubeEnv.is_success(np.zeros(5), np.zeros(3)), "(5,)")
    np.testing.assert_array_equal(env.get_state(), zero_quaternion[:17].tolist() + env.get_state()[17:].tolist())


def test_importing_the_cube_modules_does_not_import_mujoco() -> None:
    code = ("import sys, lewm.envs.cube, lewm.envs.cube_expert\n"
            "print(sorted(m for m in ('mujoco', 'dm_control', 'ogbench') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# -- collection --------------------------------------------------------------------------------------------


def test_simulate_cube_shapes_and_determinism(episodes: tuple[np.ndarray, ...]) -> None:
    states, actions, observations, proprio = episodes
    assert states.shape == (2, 60, STATE_DIM) and states.dtype == np.float64
    assert actions.shape == (2, 60, 5) and actions.dtype == np.float32
    assert np.isnan(actions[:, -1]).all() and np.isfinite(actions[:, :-1]).all()
    assert np.abs(actions[:, :-1]).max() <= 1.0
    assert observations.shape == (2, 60, OBSERVATION_DIM) and proprio.shape == (2, 60, PROPRIO_DIM)
    np.testing.assert_array_equal(proprio, observations[..., :PROPRIO_DIM])
    alone = simulate_cube(np.array([1]), "expert", 60, 5, 0.1)  # an episode depends on (seed, episode) only
    for ours, theirs in zip(alone, episodes, strict=True):
        np.testing.assert_array_equal(ours[0], theirs[1])
    other_seed = simulate_cube(np.array([1]), "expert", 60, 6, 0.1)[0]
    assert not np.array_equal(other_seed[0], states[1])


def test_replaying_stored_actions_reproduces_the_stored_states(episodes: tuple[np.ndarray, ...]) -> None:
    states, actions, observations, _ = episodes
    env = CubeEnv(image_size=8, max_episode_steps=100, shadows=False)
    env.reset(options={"state": states[0, 0]})
    for t in range(30):
        _, _, _, _, info = env.step(actions[0, t])
        np.testing.assert_array_equal(env.get_state(), states[0, t + 1])
        np.testing.assert_array_equal(info["observation"], observations[0, t + 1])


def test_the_oracle_moves_the_cube_far_more_often_than_random_actions(episodes: tuple[np.ndarray, ...]) -> None:
    expert = window_fractions(simulate_cube(np.arange(4), "expert", 100, 0, 0.1)[0])
    random = window_fractions(simulate_cube(np.arange(4), "random", 100, 0, 0.1)[0])
    print(f"cube windows: expert {expert}, random {random}")
    assert expert["nontrivial_fraction"] > 0.5 and random["nontrivial_fraction"] < 0.05
    assert expert["nontrivial_fraction"] + expert["trivial_fraction"] == pytest.approx(1.0)
    moved = np.linalg.norm(episodes[0][:, -1, CUBE_QPOS] - episodes[0][:, 0, CUBE_QPOS], axis=-1)
    assert (moved > 0.04).any()


def test_window_fractions_count_moves_over_four_centimetres_and_need_more_than_25_steps() -> None:
    states = np.zeros((1, 27, STATE_DIM))
    states[0, 25:, 14] = [0.05, 0.03]  # window 0 moves 5 cm, window 1 moves 3 cm
    assert window_fractions(states) == {"nontrivial_fraction": 0.5, "trivial_fraction": 0.5}
    assert window_fractions(states[:, :25]) == {"nontrivial_fraction": None, "trivial_fraction": None}


def test_simulate_cube_refuses_an_unknown_policy() -> None:
    _one_line_error(lambda: simulate_cube(np.arange(1), "weak", 5, 0, 0.1), "policy = 'weak'")
