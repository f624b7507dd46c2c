"""Reacher: the environment API, the success test, rendering at any size, the PD expert and the simulator."""

from __future__ import annotations

import importlib.util
import math
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

# Located, not imported: mujoco picks its GL backend when first imported, which lewm does (MUJOCO_GL=egl).
for _package in ("mujoco", "dm_control"):
    if importlib.util.find_spec(_package) is None:
        pytest.skip(f"Reacher needs {_package} (pip install -e '.[mujoco]')", allow_module_level=True)

from lewm.envs import reacher  # noqa: E402
from lewm.envs.mujoco_backend import StateRenderer  # noqa: E402
from lewm.envs.reacher import (  # noqa: E402
    ACTION_REPEAT,
    SUCCESS_TOLERANCE,
    WRIST_LIMIT,
    ReacherEnv,
    ReacherPhysics,
    is_success,
    observation_vector,
    render_frames,
)
from lewm.envs.reacher_expert import ReacherExpert, simulate_reacher, window_fractions  # noqa: E402
from lewm.errors import LewmError  # noqa: E402

SIZE = 16
"""Frames of the API tests: small, as rendering dominates their cost."""


@pytest.fixture(scope="module", autouse=True)
def _rendering() -> None:
    """Skip the module (with the reason) where no headless GL backend can render."""
    try:
        render_frames(np.zeros((1, 4)), 8)
    except LewmError as error:
        pytest.skip(f"MuJoCo cannot render here: {error}")


def _env(**kwargs) -> ReacherEnv:
    return ReacherEnv(image_size=kwargs.pop("image_size", SIZE), **kwargs)


def _after_physics_steps(state: np.ndarray, action: np.ndarray, count: int) -> np.ndarray:
    """The (4,) state `count` physics steps after `state` under a constant action (no early stop)."""
    physics = ReacherPhysics()
    physics.set_state(state)
    physics.data.ctrl[:] = reacher.to_control(np.clip(action, -1.0, 1.0))
    for _ in range(count):
        physics.mujoco.mj_step(physics.model, physics.data)
    return physics.get_state()


# -- model and API -------------------------------------------------------------------------------------


def test_model_is_dm_control_reacher_with_the_reference_target() -> None:
    model = reacher.build_model()
    assert (model.nq, model.nv, model.nu) == (2, 2, 2)
    assert model.opt.timestep == 0.02
    assert model.jnt_range[1].tolist() == pytest.approx([-WRIST_LIMIT, WRIST_LIMIT])
    assert model.actuator_ctrlrange.tolist() == [[-1.0, 1.0], [-1.0, 1.0]]
    mujoco = reacher.import_mujoco("reacher")
    target = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "target")
    assert model.geom_size[target, 0] == pytest.approx(reacher.TARGET_SIZE)
    assert model.mat_rgba[model.geom_matid[target], 3] == 0.0  # invisible
    assert model.vis.global_.offwidth == 640
    assert reacher.build_model(image_size=900).vis.global_.offheight == 900


def test_spaces_reset_and_info() -> None:
    env = _env()
    obs, info = env.reset(seed=3)
    assert env.action_space.shape == (2,) and env.action_space.dtype == np.float32
    assert obs["pixels"].shape == (SIZE, SIZE, 3) and obs["pixels"].dtype == np.uint8
    state = env.get_state()
    assert state.shape == (4,) and state.dtype == np.float64
    assert obs["proprio"].dtype == np.float32 and np.array_equal(obs["proprio"], state.astype(np.float32))
    assert -np.pi <= state[0] <= np.pi and abs(state[1]) <= WRIST_LIMIT and state[2:].tolist() == [0.0, 0.0]
    assert set(info) == {"success", "state", "goal_state", "joint_error", "observation"}
    assert info["joint_error"] == pytest.approx(np.abs(state[:2] - env.get_goal_state()[:2]).max())
    observation = info["observation"]
    assert observation.shape == (6,) and observation.dtype == np.float32
    finger = env.physics.finger_xy()
    assert np.array_equal(observation, np.concatenate([state[:2], env.target - finger, state[2:]]).astype(np.float32))
    assert np.array_equal(observation_vector(state, env.target), observation)
    assert 0.05 <= np.linalg.norm(env.target) <= 0.2


def test_reset_is_seeded_and_draws_over_the_joint_ranges() -> None:
    env = _env()
    draws = []
    for seed in range(40):
        env.reset(seed=seed)
        draws.append(np.concatenate([env.get_state(), env.get_goal_state()]))
    draws = np.array(draws)  # 40 8: start then goal
    env.reset(seed=7)
    assert np.array_equal(np.concatenate([env.get_state(), env.get_goal_state()]), draws[7])
    assert np.abs(draws[:, [0, 4]]).max() <= np.pi and np.abs(draws[:, [1, 5]]).max() <= WRIST_LIMIT
    assert np.abs(draws[:, [1, 5]]).max() > 2.0  # the wrist's range is used, not a narrow band
    assert not np.array_equal(draws[:, 0], draws[:, 4])  # start and goal are separate draws


def test_reset_options_impose_start_and_goal() -> None:
    env = _env()
    start, goal = np.array([0.5, -1.0, 0.2, -0.3]), np.array([1.0, 2.0])
    env.reset(options={"state": start, "goal_state": goal})
    assert np.array_equal(env.get_state(), start)
    assert env.get_goal_state().tolist() == [1.0, 2.0, 0.0, 0.0]
    with pytest.raises(LewmError, match="'target' is unknown"):
        env.reset(options={"target": goal})


def test_gymnasium_env_checker_passes() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(_env(), skip_render_check=False)
    # acceptable remarks: no registry spec for other render modes; proprio (velocity) is unbounded
    remarks = [str(w.message) for w in caught]
    assert [r for r in remarks if "spec" not in r and "infinity" not in r] == []


def test_set_state_round_trip_and_no_physics_step() -> None:
    env = _env()
    state = np.array([7.0, -2.7, 3.5, -4.0])  # unwrapped shoulder, wrist near its limit
    env.set_state(state)
    assert np.array_equal(env.get_state(), state)
    assert env.physics.data.time == 0.0  # mj_forward only


def test_set_goal_state_leaves_the_state_alone() -> None:
    env = _env()
    env.reset(seed=0)
    before = env.get_state()
    env.set_goal_state([0.3, -0.4])
    assert env.get_goal_state().tolist() == [0.3, -0.4, 0.0, 0.0]
    assert np.array_equal(env.get_state(), before)
    goal = np.array([0.1, 0.2, 0.3, 0.4])
    env.set_goal_state(goal)
    assert np.array_equal(env.get_goal_state(), goal) and np.array_equal(env.get_state(), before)


def test_is_success_uses_the_plain_difference_and_a_strict_threshold() -> None:
    goal = np.array([1.0, -0.5, 0.0, 0.0])
    assert ReacherEnv.is_success(goal + [0.049, -0.049, 9.0, 9.0], goal)  # velocities are not compared
    assert not ReacherEnv.is_success(np.array([1.05, -0.5, 0, 0]), np.array([1.0, -0.5, 0, 0]))  # exactly 0.05
    exact = np.array([0.0, 0.0]), np.array([SUCCESS_TOLERANCE, 0.0])
    assert not is_success(*exact) and is_success(exact[0], np.nextafter(exact[1], -1))
    assert not is_success(goal + [2 * np.pi, 0, 0, 0], goal)  # same pose a turn round: not wrapped
    batch = np.array([[1.0, -0.5, 0, 0], [1.04, -0.46, 0, 0], [1.0, -0.56, 0, 0]])
    result = is_success(batch, goal[:2])
    assert result.dtype == bool and result.tolist() == [True, True, False]
    assert isinstance(is_success(goal, goal), bool)


# -- stepping ------------------------------------------------------------------------------------------


def test_step_repeats_the_action_for_two_physics_steps() -> None:
    env = _env()
    start = np.array([0.2, 0.4, 1.0, -2.0])
    env.reset(options={"state": start, "goal_state": [3.0, -2.0]})
    action = np.array([0.7, -0.3], dtype=np.float32)
    _, reward, terminated, truncated, info = env.step(action)
    assert np.array_equal(env.get_state(), _after_physics_steps(start, action.astype(np.float64), ACTION_REPEAT))
    assert (reward, terminated, truncated, info["success"]) == (0.0, False, False, False)
    assert env.physics.data.time == pytest.approx(ACTION_REPEAT * reacher.PHYSICS_STEP)


def test_step_stops_after_the_physics_step_that_reaches_the_goal() -> None:
    """Reference quirk: a success on the first physics step ends the environment step there (0.02 s)."""
    env = _env()
    start = np.array([0.2, 0.4, 1.0, -2.0])
    action = np.array([1.0, 1.0])
    half = _after_physics_steps(start, action, 1)
    env.reset(options={"state": start, "goal_state": half})
    _, reward, terminated, _, info = env.step(action)
    assert np.array_equal(env.get_state(), half)
    assert (reward, terminated, info["success"], info["joint_error"]) == (1.0, True, True, 0.0)
    # lewm does not start a new episode after a success: it steps on from the current state
    env.step(action)
    assert np.array_equal(env.get_state(), _after_physics_steps(half, action, ACTION_REPEAT))


def test_actions_are_clipped_and_checked() -> None:
    env = _env()
    start = np.array([0.0, 0.0, 0.0, 0.0])
    far = [3.0, 2.0]
    results = []
    for action in ([5.0, -7.0], np.array([1.0, -1.0], dtype=np.float32)):
        env.reset(options={"state": start, "goal_state": far})
        env.step(action)
        results.append(env.get_state())
    assert np.array_equal(results[0], results[1])
    with pytest.raises(LewmError, match=r"^reacher: action has shape \(3,\), expected \(2,\)$"):
        env.step([0.0, 0.0, 0.0])
    with pytest.raises(LewmError, match="not finite"):
        env.step([np.nan, 0.0])


def test_truncation_after_max_episode_steps() -> None:
    env = _env(max_episode_steps=3)
    env.reset(options={"state": np.zeros(4), "goal_state": [3.0, 2.0]})
    flags = [env.step([0.0, 0.0])[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_action_scale_quirk_rounds_like_dm_control() -> None:
    """dm_control maps actions with -1 + (a + 1): 0.3 becomes 0.30000000000000004, not 0.3."""
    control = reacher.to_control(np.array([0.3, -1.0, 1.0, 0.0]))
    assert control[0] != 0.3 and control[0] == -1.0 + (0.3 + 1.0)
    assert control[1:].tolist() == [-1.0, 1.0, 0.0]


# -- rendering -----------------------------------------------------------------------------------------


def test_render_at_any_size_and_without_disturbing_the_state() -> None:
    env = _env(image_size=37)
    env.reset(seed=1)
    state = env.get_state()
    frame = env.render()
    assert frame.shape == (37, 37, 3) and frame.dtype == np.uint8
    other = env.render_state(np.array([state[0] + 1.0, -state[1], 0.0, 0.0]))
    assert np.array_equal(env.get_state(), state)
    assert (frame != other).any(axis=-1).sum() > 10  # the arm moved in the picture
    assert np.array_equal(env.goal_observation(), render_frames(env.get_goal_state()[None], 37)[0])
    assert np.array_equal(frame, render_frames(state[None, :2], 37)[0])  # velocities do not show
    big = render_frames(np.zeros((1, 4)), 700)  # beyond MuJoCo's default 640 x 480 offscreen buffer
    assert big.shape == (1, 700, 700, 3) and big.std() > 5


def test_render_frames_is_deterministic_and_recolours_the_arm() -> None:
    states = np.array([[0.0, 0.0], [1.5, -1.0], [-2.0, 2.5]])
    frames = render_frames(states, 48)
    assert frames.shape == (3, 48, 48, 3)
    assert np.array_equal(frames, render_frames(states, 48))
    blue = render_frames(states, 48, arm_rgb=(0.0, 0.0, 1.0))
    changed = (blue != frames).any(axis=-1)  # 3 48 48
    assert 10 < changed[0].sum() < 0.2 * 48 * 48  # only the arm (and its shadow/reflection) changes
    assert (blue[changed][:, 2].astype(int) > blue[changed][:, 0]).mean() > 0.9


def test_a_renderer_freed_out_of_order_leaves_the_others_intact() -> None:
    """Regression: `mujoco.Renderer.close` frees GL objects in whichever context is current; a cache entry freed
    after another renderer drew last used to delete that renderer's framebuffers (its frames became noise)."""
    states = np.array([[0.4, 0.9, 0.0, 0.0]])
    before = render_frames(states, 40)
    extra = StateRenderer("reacher", reacher.build_model(), 24, reacher.CAMERA)
    extra.render(states[0, :2], states[0, 2:], np.empty((24, 24, 3), dtype=np.uint8))
    render_frames(states, 40)  # the cached renderer's context is current now
    extra.close()  # freed while another context is current
    assert np.array_equal(render_frames(states, 40), before)


@pytest.mark.parametrize("call, message", [
    (lambda env: env.set_state([1.0, 2.0]), r"state has shape \(2,\), expected 4 numbers \(qpos, qvel\)$"),
    (lambda env: env.set_state([0.0, np.inf, 0.0, 0.0]), r"state = \[0.0, inf, 0.0, 0.0\] is invalid: not finite"),
    (lambda env: env.set_state("abc"), "state = 'abc' is invalid"),
    (lambda env: env.set_goal_state([1.0, 2.0, 3.0]), "goal_state has shape \\(3,\\), expected 4 numbers"),
    (lambda env: render_frames(np.zeros((2, 3)), 8), r"states have shape \(2, 3\), expected \(T, 4\) or \(T, 2\)"),
    (lambda env: render_frames(np.zeros((1, 4)), 0), "image_size = 0 is invalid"),
    (lambda env: render_frames(np.zeros((1, 4)), 8, arm_rgb=(1.0, 2.0)), r"arm_rgb = \(1.0, 2.0\) is invalid"),
    (lambda env: ReacherEnv(image_size=-3), "image_size = -3 is invalid"),
    (lambda env: ReacherEnv(render_mode="human"), "render_mode = 'human' is invalid"),
])
def test_errors_are_one_line_lewm_errors_naming_the_value(call, message) -> None:
    env = _env()
    with pytest.raises(LewmError, match=message) as raised:
        call(env)
    assert "\n" not in str(raised.value) and str(raised.value).startswith("reacher")


# -- expert and simulator ------------------------------------------------------------------------------


def test_expert_reaches_its_goals() -> None:
    physics = ReacherPhysics()
    reached = goals = 0
    for episode in range(8):
        rng = np.random.default_rng([0, episode])
        physics.set_state(reacher.sample_states(rng, 1)[0])
        expert = ReacherExpert(rng, noise_std=0.5)
        for _ in range(200):
            physics.step(expert.act(physics.get_state()).astype(np.float64))
        reached, goals = reached + expert.reached, goals + expert.reached + expert.abandoned
    assert goals >= 8 * 5  # a goal about every 20-40 steps (measured: 60 in 8 episodes)
    assert reached >= 0.9 * goals  # measured: all of them


def test_simulate_reacher_shapes_and_determinism() -> None:
    states, actions, observations = simulate_reacher(np.array([4, 9]), "expert", 30, seed=5, noise_std=0.5)
    assert states.shape == (2, 30, 4) and states.dtype == np.float64
    assert actions.shape == (2, 30, 2) and actions.dtype == np.float32
    assert observations.shape == (2, 30, 6) and observations.dtype == np.float32
    assert np.isnan(actions[:, -1]).all() and np.abs(actions[:, :-1]).max() <= 1.0
    assert np.array_equal(observations[..., :2], states[..., :2].astype(np.float32))
    assert np.array_equal(observations[..., 4:], states[..., 2:].astype(np.float32))
    again = simulate_reacher(np.array([4, 9]), "expert", 30, seed=5, noise_std=0.5)
    for repeated, first in zip(again, (states, actions, observations), strict=True):
        assert np.array_equal(repeated, first, equal_nan=True)
    alone = simulate_reacher(np.array([9]), "expert", 30, seed=5, noise_std=0.5)  # independent of the batch
    assert np.array_equal(alone[0][0], states[1]) and np.array_equal(alone[1][0], actions[1], equal_nan=True)
    other = simulate_reacher(np.array([9]), "expert", 30, seed=6, noise_std=0.5)
    assert not np.array_equal(other[0][0], states[1])
    with pytest.raises(LewmError, match="policy = 'weak' is invalid"):
        simulate_reacher(np.array([0]), "weak", 5, seed=0, noise_std=0.0)


@pytest.mark.parametrize("policy", ["expert", "random"])
def test_replaying_stored_actions_reproduces_the_states(policy: str) -> None:
    states, actions, _ = simulate_reacher(np.array([2]), policy, 40, seed=1, noise_std=0.5)
    env = _env()
    # a goal no state reaches (wrist beyond its range), so the stop-on-success quirk cannot interfere
    env.reset(options={"state": states[0, 0], "goal_state": [0.0, 6.0]})
    replayed = [env.get_state()]
    for action in actions[0, :-1]:
        replayed.append(env.step(action)[4]["state"])
    assert np.array_equal(np.array(replayed), states[0])


def test_window_fractions() -> None:
    still = np.zeros((2, 40, 4))
    assert window_fractions(still) == {"nontrivial_fraction": 0.0, "trivial_fraction": 1.0}
    assert window_fractions(still[:, :25]) == {"nontrivial_fraction": None, "trivial_fraction": None}
    moving = still.copy()
    moving[0, :, 0] = np.linspace(0, 3.9, 40)  # 0.1 rad per step: every window of episode 0 is nontrivial
    assert window_fractions(moving)["nontrivial_fraction"] == pytest.approx(0.5)


def test_expert_episodes_keep_moving_more_than_random_ones() -> None:
    """Both policies rarely leave a 25-step window already solved at this tolerance (measured over 40 episodes:
    expert 0.998, random 0.993 nontrivial); the expert's windows span far larger motions (median largest joint
    change 1.9 rad against 0.6 rad for random actions), which is what makes its start/goal pairs informative."""
    ids = np.arange(12)
    expert, _, _ = simulate_reacher(ids, "expert", 200, seed=0, noise_std=0.5)
    randomly, _, _ = simulate_reacher(ids, "random", 200, seed=0, noise_std=0.0)
    fractions = window_fractions(expert), window_fractions(randomly)
    assert fractions[0]["nontrivial_fraction"] >= 0.99 and fractions[1]["nontrivial_fraction"] >= 0.95
    moves = [np.median(np.abs(s[:, 25:, :2] - s[:, :-25, :2]).max(axis=-1)) for s in (expert, randomly)]
    assert moves[0] > 1.3 and moves[1] < 0.9 and moves[0] > 2 * moves[1]
    assert math.isclose(fractions[0]["nontrivial_fraction"] + fractions[0]["trivial_fraction"], 1.0)
