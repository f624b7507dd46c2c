"""The scripted expert reaches any target (through the door when needed); random actions are uniform."""

from __future__ import annotations

import numpy as np

from lewm.envs import TwoRoomGeometry, step_positions
from lewm.envs.policies import expert_actions, expert_directions, random_actions
from lewm.envs.two_room import distances, sample_free_positions

G = TwoRoomGeometry()


def _steps_to_reach(start: np.ndarray, target: np.ndarray, limit: int = 100) -> np.ndarray:
    """(N,) first step at which each noise-free expert is within 16 px of its target (limit + 1 if never)."""
    rng = np.random.default_rng(0)
    pos = start.copy()
    reached = np.full(len(pos), limit + 1)
    for t in range(1, limit + 1):
        pos = step_positions(pos, expert_actions(pos, target, rng, noise_std=0.0))
        hit = (distances(pos, target) < G.success_distance) & (reached > limit)
        reached[hit] = t
    return reached


def test_expert_reaches_targets_in_the_other_room_within_100_steps() -> None:
    rng = np.random.default_rng(1)
    start = sample_free_positions(rng, 2000)
    target = sample_free_positions(rng, 2000)
    # put every target in the room the agent is not in
    other = (start[:, 0] < 112) == (target[:, 0] < 112)
    target[other, 0] = 224.0 - target[other, 0]
    steps = _steps_to_reach(start, target)
    assert steps.max() <= 100, f"slowest {steps.max()} steps from {start[steps.argmax()]} to {target[steps.argmax()]}"


def test_expert_reaches_any_canvas_target_from_the_worst_corners() -> None:
    # targets anywhere in the reset square [14, 209]^2, wall band included; starts in the far corners and inside
    # the door
    grid = np.linspace(14.0, 209.0, 27)
    target = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    for start_xy in ((21.0, 21.0), (21.0, 203.0), (203.0, 203.0), (99.5, 203.0), (124.5, 21.0), (112.0, 64.0)):
        start = np.broadcast_to(np.array(start_xy), target.shape).copy()
        steps = _steps_to_reach(start, target)
        assert steps.max() <= 100, f"from {start_xy}: stuck on {target[steps.argmax()]}"


def test_expert_directions_are_unit_and_noise_is_clipped() -> None:
    rng = np.random.default_rng(2)
    pos, target = sample_free_positions(rng, 500), sample_free_positions(rng, 500)
    norms = np.linalg.norm(expert_directions(pos, target), axis=-1)
    assert np.allclose(norms, 1.0)
    noisy = expert_actions(pos, target, rng, noise_std=2.0)
    assert noisy.dtype == np.float32 and noisy.shape == (500, 2)
    assert noisy.min() == -1.0 and noisy.max() == 1.0
    # the same generator state gives the same actions
    first = expert_actions(pos, target, np.random.default_rng(5), 1.0)
    assert np.array_equal(first, expert_actions(pos, target, np.random.default_rng(5), 1.0))


def test_expert_heads_for_the_door_then_through_it() -> None:
    left_far = np.array([[30.0, 180.0]])
    right_target = np.array([[180.0, 180.0]])
    direction = expert_directions(left_far, right_target)[0]
    assert direction[1] < 0  # up towards the door, not straight right into the wall
    lined_up = np.array([[80.0, 49.0]])
    assert np.allclose(expert_directions(lined_up, right_target)[0], [1.0, 0.0])


def test_random_actions_are_uniform_in_unit_box() -> None:
    actions = random_actions(20000, np.random.default_rng(0))
    assert actions.shape == (20000, 2) and actions.dtype == np.float32
    assert actions.min() >= -1 and actions.max() <= 1
    assert abs(actions.mean()) < 0.02 and abs(actions.std() - 1 / np.sqrt(3)) < 0.02
