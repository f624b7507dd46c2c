"""Push-T physics, success test, rendering and the gymnasium environment against the reference geometry."""

from __future__ import annotations

import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lewm.envs import make
from lewm.envs.pusht import (
    AGENT_COLOR,
    BACKGROUND,
    BLOCK_COLOR,
    DECORATION_COLOR,
    PushTEnv,
    PushTGeometry,
    PushTPhysics,
    block_to_world,
    distance_to_block,
    is_success,
    render_frames,
)
from lewm.errors import LewmError

G = PushTGeometry()
RADIUS = G.agent_radius
PENETRATION_TOLERANCE = 5.0
"""How far the kinematic agent may sink into the block for a moment in open space: pymunk resolves a contact a
substep after it forms, and a full-speed agent moves 4-5 units per substep (worst seen here: about 3 units)."""


def _physics(state: list[float]) -> PushTPhysics:
    """A fresh pymunk space (no contact history) at a state."""
    physics = PushTPhysics()
    physics.set_state(np.array(state, dtype=np.float64))
    return physics


def _agent_block_distance(state: np.ndarray) -> float:
    """Distance from the agent's centre to the T (0 when the centre is inside it)."""
    return float(distance_to_block(state[None, None, :2], state[None, 2:5])[0, 0])


def _wall_clearance(state: np.ndarray) -> float:
    """Smallest gap between a corner of the T and the inner face of a wall."""
    corners = np.array([[x, y] for x0, y0, x1, y1 in G.rectangles() for x in (x0, x1) for y in (y0, y1)])
    world = block_to_world(corners[None], state[None, 2:5])[0]
    inner_low, inner_high = G.wall_low + G.wall_radius, G.wall_high - G.wall_radius
    return float(min(world.min() - inner_low, inner_high - world.max()))


def _pixel(frame: np.ndarray, x: float, y: float) -> tuple[int, ...]:
    """The colour of the pixel containing world point (x, y)."""
    size = frame.shape[0]
    return tuple(int(c) for c in frame[int(y * size / G.world), int(x * size / G.world)])


# -- geometry ------------------------------------------------------------------------------------------


def test_geometry_numbers_follow_the_reference() -> None:
    assert (G.world, G.wall_low, G.wall_high, G.agent_radius) == (512.0, 5.0, 506.0, 15.0)
    assert G.bar == (-60.0, 0.0, 60.0, 30.0) and G.stem == (-15.0, 30.0, 15.0, 120.0)
    assert (G.kp, G.kv, G.substeps, G.substep_seconds, G.action_scale) == (100.0, 20.0, 10, 0.01, 100.0)
    assert (G.agent_low, G.agent_high) == (22.0, 489.0)


def test_distance_to_block_measures_the_t_outline() -> None:
    pose = np.array([[200.0, 100.0, 0.0]])
    points = np.array([[[200.0, 90.0], [200.0, 150.0], [280.0, 115.0], [200.0, 230.0], [230.0, 200.0]]])
    # above the bar, inside the stem, right of the bar's end, below the stem, right of the stem's side
    assert distance_to_block(points, pose)[0].tolist() == pytest.approx([10.0, 0.0, 20.0, 10.0, 15.0])
    # turned a quarter: the stem now points to -x (block y axis = world -x)
    turned = np.array([[[80.0 - 10.0, 100.0]]])
    assert distance_to_block(turned, np.array([[200.0, 100.0, math.pi / 2]]))[0, 0] == pytest.approx(10.0)


# -- physics: pushing ----------------------------------------------------------------------------------


def test_block_does_not_move_while_the_agent_stays_away() -> None:
    block = [380.0, 300.0, 1.1]
    physics = _physics([60.0, 60.0, *block])
    rng = np.random.default_rng(0)
    visited = []
    for _ in range(20):
        target = rng.uniform(30.0, 170.0, size=2)  # a region well clear of the block
        for _ in range(5):
            agent = physics.get_state()[:2]
            physics.step(np.clip((target - agent) / G.action_scale, -1.0, 1.0))
            state = physics.get_state()
            visited.append(state[:2])
            assert _agent_block_distance(state) > 2 * RADIUS
    visited = np.array(visited)
    assert np.ptp(visited, axis=0).min() > 80  # the agent really moved around
    assert physics.get_state()[2:5].tolist() == block  # exactly: no drift at all


def test_pushing_the_stem_from_below_moves_the_block_straight_up() -> None:
    # stem bottom edge at y = 200 + 120; the agent starts 5 units below it and pushes up, along the symmetry axis
    physics = _physics([256.0, 340.0, 256.0, 200.0, 0.0])
    for _ in range(3):
        physics.step(np.array([0.0, -0.5]))
    state = physics.get_state()
    assert 200.0 - state[3] > 30  # pushed up by tens of units
    assert state[2] == pytest.approx(256.0, abs=1e-6) and min(state[4], 2 * math.pi - state[4]) < 1e-6
    assert state[3] + G.stem[3] <= state[1] - RADIUS + PENETRATION_TOLERANCE  # the block stays ahead


def test_pushing_the_bar_off_centre_turns_the_block() -> None:
    # push the right end of the bar's top edge down: the block turns clockwise on screen (angle grows)
    physics = _physics([300.0, 180.0, 256.0, 200.0, 0.0])
    for _ in range(4):
        physics.step(np.array([0.0, 0.5]))
    state = physics.get_state()
    assert state[3] > 205.0
    turned = (state[4] + math.pi) % (2 * math.pi) - math.pi
    assert turned > 0.1


PUSHES = {
    # name: (agent xy, block pose, action, steps, least distance the block goes ahead, least turn in radians).
    # The reference's moment of inertia (twice the bar's, 3000, against 7875 for the true T) makes off-centre
    # pushes turn the block a lot: pushed on the stem's side it mostly spins away rather than sliding ahead.
    "into the bar's top": ([256.0, 40.0], [256.0, 110.0, 0.0], [0.0, 1.0], 8, 40.0, 0.0),
    "into the stem's bottom": ([256.0, 480.0], [256.0, 300.0, 0.0], [0.0, -1.0], 8, 40.0, 0.0),
    "into the stem's side": ([120.0, 300.0], [300.0, 200.0, 0.0], [1.0, 0.0], 8, 5.0, 0.5),
    "into the bar's end": ([480.0, 215.0], [330.0, 200.0, 0.0], [-1.0, 0.0], 8, 40.0, 0.5),
    "under the bar beside the stem": ([220.0, 480.0], [256.0, 200.0, 0.0], [0.0, -1.0], 8, 20.0, 0.4),
    "diagonally into the inner corner": ([120.0, 420.0], [256.0, 200.0, 0.0], [1.0, -1.0], 6, 40.0, 0.3),
}


@pytest.mark.parametrize("push", PUSHES.values(), ids=list(PUSHES))
def test_full_speed_agent_pushes_the_block_ahead_and_never_passes_through(push) -> None:
    agent, block, action, steps, ahead, turn = push
    physics = _physics([*agent, *block])
    start = physics.get_state()
    closest = math.inf
    for _ in range(steps):
        physics.step(np.array(action))
        state = physics.get_state()
        closest = min(closest, _agent_block_distance(state))
        # open space: the block is never squeezed against a wall (there the kinematic agent crushes into it)
        assert _wall_clearance(state) > 10
    assert closest >= RADIUS - PENETRATION_TOLERANCE
    assert closest < RADIUS + 1  # there was contact
    assert np.linalg.norm(state[:2] - start[:2]) > 250  # the agent was not held back
    direction = np.array(action) / np.linalg.norm(action)
    assert (state[2:4] - start[2:4]) @ direction > ahead  # the block went ahead of the agent
    turned = abs((state[4] - start[4] + math.pi) % (2 * math.pi) - math.pi)
    assert turned > turn if turn else turned < 1e-6  # pushes along the symmetry axis do not turn it


# -- physics: PD controller and walls ------------------------------------------------------------------


def test_full_scale_action_moves_the_agent_about_40_units_a_step() -> None:
    physics = _physics([100.0, 256.0, 400.0, 100.0, 0.0])
    moves = []
    for _ in range(5):
        before = physics.get_state()
        physics.step(np.array([1.0, 0.0]))
        after = physics.get_state()
        assert after[1] == before[1]  # straight along the action
        moves.append(after[0] - before[0])
    # from rest the PD controller covers ~29.6 units; once moving, ~40.7 a step at ~372 units/s
    assert 25 < moves[0] < 35
    assert all(30 < move < 45 for move in moves[1:])
    assert 350 < physics.get_state()[5] < 400
    # a smaller action moves less
    slow = _physics([100.0, 256.0, 400.0, 100.0, 0.0])
    for _ in range(5):
        slow.step(np.array([0.3, 0.0]))
    assert 20 < slow.get_state()[0] - 100.0 < 0.5 * (physics.get_state()[0] - 100.0)


ARENA_ACTIONS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1)]


@pytest.mark.parametrize("action", ARENA_ACTIONS)
def test_agent_leaves_the_arena_as_in_the_reference(action: tuple[int, int]) -> None:
    # Reference behaviour (a known defect): the PD target is not clamped and the kinematic agent ignores walls.
    physics = _physics([256.0, 256.0, 120.0, 330.0, 0.0])  # the block is off every path
    for _ in range(20):
        physics.step(np.array(action, dtype=np.float64))
    agent = physics.get_state()[:2]
    pushed = np.array(action) != 0
    assert np.all(np.minimum(agent, G.world - agent)[pushed] < -200)  # far beyond the walls


@pytest.mark.parametrize("action", ARENA_ACTIONS)
def test_keep_agent_in_arena_holds_the_agent_inside(action: tuple[int, int]) -> None:
    low, high = G.wall_low + G.wall_radius + RADIUS - 1, G.wall_high - G.wall_radius - RADIUS + 1  # 21, 490
    physics = PushTPhysics(PushTGeometry(keep_agent_in_arena=True))
    physics.set_state(np.array([256.0, 256.0, 120.0, 330.0, 0.0]))
    for _ in range(40):
        physics.step(np.array(action, dtype=np.float64))
        agent = physics.get_state()[:2]
        assert (low <= agent).all() and (agent <= high).all()
    pushed = np.array(action) != 0
    assert np.all(np.minimum(agent - low, high - agent)[pushed] < 2)  # it got to the wall


def test_keep_agent_in_arena_is_an_env_option() -> None:
    assert PushTEnv(image_size=16).geometry.keep_agent_in_arena is False
    env = PushTEnv(image_size=16, keep_agent_in_arena=True)
    assert env.geometry.keep_agent_in_arena and env.physics.geometry.keep_agent_in_arena
    env.reset(options={"state": [480.0, 256.0, 200.0, 200.0, 0.0]})
    for _ in range(5):
        env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert env.get_state()[0] <= G.agent_high + 1
    with pytest.raises(LewmError, match="keep_agent_in_arena"):
        PushTEnv(keep_agent_in_arena="yes")


# -- state API ------------------------------------------------------------------------------------------


def test_set_state_places_the_state_and_runs_one_physics_step() -> None:
    # Reference behaviour: placing a state runs one 0.01 s step, so the agent moves by its velocity * 0.01.
    env = PushTEnv(image_size=16)
    for state in ([100.5, 200.25, 300.125, 350.0625, 1.2345, -12.5, 7.25], [60.0, 70.0, 300.0, 200.0, 5.5, 0.0, 0.0]):
        given = np.array(state, dtype=np.float32)
        env.set_state(given)
        got = env.get_state()
        assert got.dtype == np.float32 and got.shape == (7,)
        expected = given.astype(np.float64)
        expected[:2] += 0.01 * expected[5:7]
        assert got.tolist() == pytest.approx(expected.tolist(), abs=1e-5)
        assert env.physics.get_state()[2:].tolist() == given[2:].astype(np.float64).tolist()  # block exact


def test_five_numbers_give_zero_velocity_and_angles_are_wrapped() -> None:
    env = PushTEnv(image_size=16)
    env.set_state([60.0, 70.0, 300.0, 200.0, 1.0, 30.0, -40.0])
    env.set_state([60.0, 70.0, 300.0, 200.0, -1.0])
    got = env.get_state()
    assert got[5:].tolist() == [0.0, 0.0]
    assert got[4] == pytest.approx(2 * math.pi - 1.0, abs=1e-6)
    env.set_state([60.0, 70.0, 300.0, 200.0, 7.0])
    assert env.get_state()[4] == pytest.approx(7.0 - 2 * math.pi, abs=1e-6)
    env.set_goal_state([1.0, 2.0, 3.0, 4.0, -0.5])
    assert env.get_goal_state().tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0, 2 * math.pi - 0.5, 0.0, 0.0])


def test_reset_imposes_start_and_goal() -> None:
    env = PushTEnv(image_size=16)
    start = [80.0, 90.0, 250.0, 260.0, 0.5, 1.0, -2.0]
    goal = [300.0, 310.0, 200.0, 150.0, 3.0]
    obs, info = env.reset(seed=0, options={"state": start, "goal_state": goal})
    placed = [80.01, 89.98, *start[2:]]  # one physics step moved the agent by its velocity * 0.01
    assert env.get_state().tolist() == pytest.approx(placed)
    assert env.get_goal_state().tolist() == pytest.approx([*goal, 0.0, 0.0])
    assert obs["proprio"].tolist() == pytest.approx([80.01, 89.98, 1.0, -2.0])
    assert info["state"].tolist() == pytest.approx(placed)
    assert info["goal_state"].tolist() == pytest.approx([*goal, 0.0, 0.0])
    assert info["position_error"] == pytest.approx(math.hypot(219.99, 220.02, 50, 110)) and not info["success"]


def test_seeded_reset_draws_a_start_without_overlap_and_repeats() -> None:
    env = PushTEnv(image_size=16)
    starts, goals = [], []
    for seed in range(20):
        _, info = env.reset(seed=seed)
        state = info["state"].astype(np.float64)
        assert _agent_block_distance(state) > RADIUS + 1
        assert (50 <= state[:2]).all() and (state[:2] <= 450).all()
        assert (100 <= state[2:4]).all() and (state[2:4] <= 400).all()
        assert state[5:].tolist() == [0.0, 0.0]
        starts.append(state)
        goals.append(info["goal_state"])
    assert len({tuple(s) for s in starts}) == 20 and not np.array_equal(starts[0], goals[0])
    _, again = env.reset(seed=7)
    assert np.array_equal(again["state"], starts[7].astype(np.float32))
    assert np.array_equal(again["goal_state"], goals[7])


def test_same_state_and_actions_give_identical_trajectories() -> None:
    random = np.random.default_rng(1).uniform(-1, 1, size=(30, 2))
    actions = np.concatenate([np.tile([0.1, -0.5], (5, 1)), random])
    start = [256.0, 360.0, 256.0, 220.0, 0.0]  # the agent starts under the stem and pushes it: contacts follow
    trajectories = []
    for _ in range(2):
        env = PushTEnv(image_size=16)
        # Seeded: as in the reference, a reset first places a random goal in the same space, and what that
        # leaves behind (cached contacts, the block's velocity) reaches the start's first steps.
        env.reset(seed=7, options={"state": start})
        trajectories.append(np.array([env.step(a)[4]["state"] for a in actions]))
    assert np.array_equal(trajectories[0], trajectories[1])
    assert np.abs(trajectories[0][-1, 2:4] - start[2:4]).max() > 5  # the block was touched


def test_set_state_forgets_earlier_contacts() -> None:
    physics = _physics([256.0, 340.0, 256.0, 200.0, 0.0])
    for _ in range(3):
        physics.step(np.array([0.0, -0.5]))  # the agent pushes the stem: a contact is cached
    far = [100.0, 100.0, 300.0, 300.0, 0.5]
    physics.set_state(np.array(far))
    physics.step(np.array([1.0, 0.0]))
    assert _agent_block_distance(physics.get_state()) > 100
    # the block is far from the agent, so nothing may move it (a stale cached contact moved it by 0.0025)
    assert physics.get_state()[2:5].tolist() == far[2:]


def test_every_state_the_physics_reaches_is_accepted_by_set_state() -> None:
    env = PushTEnv(image_size=16)
    env.reset(options={"state": [256.0, 450.0, 256.0, 200.0, 0.0]})
    for _ in range(15):  # the agent drives the stem up until the bar is pinned on the top wall
        _, _, _, _, info = env.step(np.array([0.0, -1.0]))
        env.set_state(info["state"])


# -- success test ----------------------------------------------------------------------------------------


GOAL = np.array([100.0, 100.0, 300.0, 300.0, 1.0, 0.0, 0.0])


def _off_goal(agent: tuple[float, float] = (0, 0), block: tuple[float, float] = (0, 0), angle: float = 0) -> np.ndarray:
    return GOAL + np.array([*agent, *block, angle, 5.0, -5.0])  # velocity is never compared


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (_off_goal(agent=(19.9, 0)), True),
        (_off_goal(agent=(20.1, 0)), False),
        (_off_goal(block=(0, -19.9)), True),
        (_off_goal(block=(0, -20.1)), False),
        (_off_goal(agent=(12, 0), block=(0, 16)), False),  # exactly 20: the test is strict
        (_off_goal(agent=(12, 0), block=(0, 15.9)), True),
        (_off_goal(agent=(-12, 0), block=(0, -15.9), angle=0.3), True),
        (_off_goal(angle=math.pi / 9 - 0.01), True),
        (_off_goal(angle=math.pi / 9 + 0.01), False),
        (_off_goal(angle=-(math.pi / 9 - 0.01)), True),
        (_off_goal(angle=-(math.pi / 9 + 0.01)), False),
        (_off_goal(angle=2 * math.pi), True),
        (_off_goal(block=(19.9, 0), angle=math.pi / 9 + 0.01), False),
    ],
)
def test_success_thresholds_are_20_units_and_pi_over_9(state: np.ndarray, expected: bool) -> None:
    assert is_success(state, GOAL) is expected
    assert PushTEnv.is_success(state, GOAL) is expected
    assert PushTEnv.is_success(state[:5], GOAL[:5]) is expected


def test_success_angle_wraps_around() -> None:
    state = np.array([100.0, 100.0, 300.0, 300.0, 2 * math.pi - 0.1])
    goal = np.array([100.0, 100.0, 300.0, 300.0, 0.1])
    assert is_success(state, goal) and is_success(goal, state)
    assert not is_success(np.array([100.0, 100.0, 300.0, 300.0, math.pi]), goal)


def test_success_on_batches_returns_a_bool_array() -> None:
    states = np.stack([_off_goal(agent=(19.9, 0)), _off_goal(agent=(20.1, 0)), _off_goal(angle=0.5), GOAL])
    result = PushTEnv.is_success(states, GOAL)
    assert isinstance(result, np.ndarray) and result.dtype == bool and result.tolist() == [True, False, False, True]
    pairs = PushTEnv.is_success(states, np.stack([GOAL, GOAL + 200, GOAL, GOAL + [1, 1, 1, 1, 0, 0, 0]]))
    assert pairs.tolist() == [True, False, False, True]


def test_info_success_agrees_with_is_success_and_the_episode_terminates() -> None:
    env = PushTEnv(image_size=16, max_episode_steps=50)
    start = [100.0, 100.0, 300.0, 300.0, 1.0]
    goal = [130.0, 100.0, 300.0, 300.0, 1.0]  # 30 units to the agent's right
    _, info = env.reset(options={"state": start, "goal_state": goal})
    assert not info["success"] and info["position_error"] == pytest.approx(30.0)
    _, reward, terminated, truncated, info = env.step(np.array([0.5, 0.0]))  # ~15 units from rest
    assert info["success"] == PushTEnv.is_success(info["state"], info["goal_state"])
    assert info["success"] and terminated and not truncated
    assert info["position_error"] < 20 and reward == pytest.approx(-math.hypot(info["position_error"],
                                                                                info["angle_error"]))
    # a random rollout: the flag agrees with the success test at every step
    env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(30):
        _, _, terminated, _, info = env.step(rng.uniform(-1, 1, size=2))
        assert info["success"] == PushTEnv.is_success(info["state"], info["goal_state"]) == terminated


def test_episode_is_truncated_after_max_episode_steps() -> None:
    env = PushTEnv(image_size=16, max_episode_steps=3)
    env.reset(options={"state": [100.0, 100.0, 300.0, 300.0, 1.0], "goal_state": [400.0, 400.0, 200, 200, 0]})
    flags = [env.step(np.zeros(2))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


# -- rendering -------------------------------------------------------------------------------------------


STATE = np.array([300.3, 120.7, 380.2, 330.9, 0.4, 0.0, 0.0])


@pytest.mark.parametrize("size", [17, 64, 224])
def test_frames_have_the_asked_size_and_are_deterministic(size: int) -> None:
    frames = render_frames(STATE[None], size)
    assert frames.shape == (1, size, size, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, render_frames(STATE[None], size))
    assert np.array_equal(frames, render_frames(STATE[None].astype(np.float32), size))
    colours = {tuple(int(v) for v in c) for c in frames[0].reshape(-1, 3)}
    assert BACKGROUND in colours and len(colours) > 3


def test_float64_state_and_its_float32_copy_give_identical_frames() -> None:
    state = np.array([[123.456789012, 234.567890123, 345.678901234, 156.789012345, 2.345678901234, 0, 0]])
    assert state.astype(np.float32)[0, 0] != state[0, 0]
    assert np.array_equal(render_frames(state, 64), render_frames(state.astype(np.float32), 64))


@pytest.mark.parametrize("size", [64, 224])
def test_agent_block_and_decoration_colours(size: int) -> None:
    frame = render_frames(STATE[None], size)[0]
    assert _pixel(frame, *STATE[:2]) == AGENT_COLOR
    stem_middle = block_to_world(np.array([[[0.0, 75.0]]]), STATE[None, 2:5])[0, 0]
    assert _pixel(frame, *stem_middle) == BLOCK_COLOR
    decoration_stem = block_to_world(np.array([[[0.0, 75.0]]]), np.array([G.decoration]))[0, 0]
    assert _pixel(frame, *decoration_stem) == DECORATION_COLOR
    assert _pixel(frame, 30.0, 480.0) == BACKGROUND


def test_frame_changes_where_the_block_moves() -> None:
    moved = STATE.copy()
    moved[2] += 10.0
    before, after = render_frames(np.stack([STATE, moved]), 64)
    changed = np.flatnonzero(np.any(before != after, axis=-1).any(axis=0))  # changed columns
    assert len(changed) > 0
    # only columns the block covers (before or after) change
    assert changed.min() >= int((STATE[2] - 130) * 64 / 512) and changed.max() <= int((STATE[2] + 140) * 64 / 512)


def test_observation_is_the_rendered_state() -> None:
    env = PushTEnv(image_size=64)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (64, 64, 3) and obs["pixels"].dtype == np.uint8
    assert np.array_equal(obs["pixels"], render_frames(env.get_state()[None], 64)[0])
    obs, *_ = env.step(np.array([0.5, -0.5]))
    state = env.get_state()
    assert np.array_equal(obs["pixels"], render_frames(state[None], 64)[0])
    assert np.array_equal(env.render(), obs["pixels"])
    assert obs["proprio"].dtype == np.float32 and np.array_equal(obs["proprio"], state[[0, 1, 5, 6]])


def test_goal_observation_is_the_frame_of_the_goal_state() -> None:
    env = PushTEnv(image_size=64)
    obs, _ = env.reset(seed=4)
    goal = env.get_goal_state()
    expected = env.goal_observation()
    assert np.array_equal(expected, render_frames(goal[None], 64)[0])
    assert not np.array_equal(expected, obs["pixels"])
    env.set_state(goal)
    assert np.array_equal(env.render(), expected)


@pytest.mark.parametrize(
    ("states", "size", "message"),
    [
        (STATE[None], 0, "size = 0 is invalid"),
        (STATE[None], 32.0, "size = 32.0 is invalid"),
        (STATE, 32, r"shape \(7,\), expected \(N, >= 5\)"),
        (STATE[None, :4], 32, r"shape \(1, 4\)"),
        (np.array([[1.0, 2.0, np.nan, 4.0, 0.0]]), 32, "non-finite"),
    ],
)
def test_render_frames_rejects_bad_input(states: np.ndarray, size: int, message: str) -> None:
    with pytest.raises(LewmError, match=message):
        render_frames(states, size)


# -- gymnasium -------------------------------------------------------------------------------------------


def test_observations_lie_in_the_spaces() -> None:
    env = PushTEnv(image_size=32)
    assert env.action_space.shape == (2,) and env.action_space.low.tolist() == [-1.0, -1.0]
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.action_space.seed(0)
    for _ in range(5):
        obs, reward, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and isinstance(reward, float)


def test_gymnasium_env_checker_passes() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(PushTEnv(image_size=32), skip_render_check=False)
    # acceptable remarks: no registry spec for other render modes; proprio (velocity) is unbounded
    remarks = [str(w.message) for w in caught]
    assert [r for r in remarks if "spec" not in r and "infinity" not in r] == []


def test_registry_and_gymnasium_id() -> None:
    for name in ("pusht", "Push-T", "push_t", "PUSHT"):
        assert isinstance(make(name, image_size=16), PushTEnv)
    assert make("pusht", image_size=48).observation_space["pixels"].shape == (48, 48, 3)
    env = gymnasium.make("lewm/PushT-v0", image_size=16)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (16, 16, 3) and obs["proprio"].shape == (4,)
    assert isinstance(env.unwrapped, PushTEnv)


# -- bad input -------------------------------------------------------------------------------------------


def test_agent_positions_are_unbounded_unless_kept_in_the_arena() -> None:
    far = [-500.0, 900.0, 200.0, 200.0, 0.0]
    PushTEnv(image_size=16).set_state(far)  # reachable in the reference: the agent can leave the arena
    with pytest.raises(LewmError, match=r"outside \[-64, 576\]"):
        PushTEnv(image_size=16, keep_agent_in_arena=True).set_state(far)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1.0, 2.0, 3.0], "state has 3 numbers, expected 5"),
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "state has 6 numbers"),
        ([100.0, np.nan, 200.0, 200.0, 0.0], "not finite"),
        ([100.0, 100.0, 200.0, 200.0, np.inf], "not finite"),
        ([100.0, 100.0, -65.0, 200.0, 0.0], r"outside \[-64, 576\]"),
        ([100.0, 100.0, 200.0, 577.0, 0.0], r"outside \[-64, 576\]"),
        ("abcde", "invalid"),
    ],
)
def test_bad_states_raise_one_line_errors(value, message: str) -> None:
    env = PushTEnv(image_size=16)
    env.set_state([60.0, 70.0, 300.0, 200.0, 0.5])
    with pytest.raises(LewmError, match=message) as error:
        env.set_state(value)
    assert "\n" not in str(error.value)
    with pytest.raises(LewmError, match=message.replace("state", "goal_state")):
        env.set_goal_state(value)
    assert env.get_state()[:5].tolist() == pytest.approx([60.0, 70.0, 300.0, 200.0, 0.5])  # unchanged


def test_bad_actions_options_and_constructor_arguments_raise() -> None:
    env = PushTEnv(image_size=16)
    env.reset(seed=0)
    with pytest.raises(LewmError, match="not finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(LewmError, match=r"shape \(3,\), expected \(2,\)"):
        env.step(np.zeros(3))
    with pytest.raises(LewmError, match="reset option 'start' is unknown"):
        env.reset(options={"start": [1, 2, 3, 4, 5]})
    with pytest.raises(LewmError, match="goal_state has 2 numbers"):
        env.reset(options={"goal_state": [1, 2]})
    with pytest.raises(LewmError, match="image_size = 0 is invalid"):
        PushTEnv(image_size=0)
    with pytest.raises(LewmError, match="max_episode_steps = 0 is invalid"):
        PushTEnv(max_episode_steps=0)
    with pytest.raises(LewmError, match="render_mode = 'human' is invalid"):
        PushTEnv(render_mode="human")


def test_out_of_range_actions_are_clipped() -> None:
    clipped, scaled = PushTEnv(image_size=16), PushTEnv(image_size=16)
    for env in (clipped, scaled):
        # seeded: the random goal is placed (one physics step) before the start, as in the reference
        env.reset(seed=3, options={"state": [100.0, 100.0, 400.0, 400.0, 0.0]})
    clipped.step(np.array([5.0, -3.0]))
    scaled.step(np.array([1.0, -1.0]))
    assert np.array_equal(clipped.get_state(), scaled.get_state())
