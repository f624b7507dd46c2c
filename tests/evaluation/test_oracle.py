"""The Push-T oracle: its batched physics steps as `PushTPhysics` does, and CEM with it plans (so that its success
rate is a ceiling for learned models, and a cost that points the wrong way makes it fail)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lewm.envs.pusht import DEFAULT_GEOMETRY, PushTPhysics, block_to_world, sample_states, wrap_angle
from lewm.envs.pusht_expert import simulate_pusht
from lewm.errors import LewmError
from lewm.evaluation.oracle import BatchedPushT, OracleRollout, pose_cost, run_oracle
from lewm.evaluation.protocol import Pairs, run_random
from lewm.planning import CEMConfig


def _clear_starts(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 7) starts with the block clear of the walls, the agent clear of the block, and a random agent
    velocity."""
    corners = np.array([[x, y] for x0, y0, x1, y1 in DEFAULT_GEOMETRY.rectangles() for x in (x0, x1)
                        for y in (y0, y1)])
    starts = []
    while len(starts) < count:
        state = sample_states(rng, 1)[0]
        world = block_to_world(corners, state[2:5])  # 8 2
        if world.min() > 20 and world.max() < 490:
            state[5:7] = rng.uniform(-50, 50, size=2)
            starts.append(state)
    return np.stack(starts)


def _sequential(starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """`PushTPhysics` stepping one candidate at a time from a fresh space, the state placed as `BatchedPushT.place`
    places it (angle, origin, agent velocity; no physics step): -> the states after every step (W, T, 7)."""
    trajectories = []
    for start, sequence in zip(starts, actions, strict=True):
        physics = PushTPhysics()
        physics.agent.position, physics.agent.velocity = tuple(start[0:2]), tuple(start[5:7])
        physics.block.angle = float(start[4])
        physics.block.position = tuple(start[2:4])
        steps = []
        for action in sequence:
            physics.step(action)
            steps.append(physics.get_state())
        trajectories.append(steps)
    return np.array(trajectories)


def _touches_wall(trajectories: np.ndarray, margin: float = 3.0) -> np.ndarray:
    """(W,) bool: the block comes within `margin` of a wall's face at some step of (W, T, 7) states."""
    corners = np.array([[x, y] for x0, y0, x1, y1 in DEFAULT_GEOMETRY.rectangles() for x in (x0, x1)
                        for y in (y0, y1)])
    world = block_to_world(np.broadcast_to(corners, (*trajectories.shape[:2], 8, 2)), trajectories[..., 2:5])
    g = DEFAULT_GEOMETRY
    low, high = g.wall_low + g.wall_radius + margin, g.wall_high - g.wall_radius - margin
    return ((world < low) | (world > high)).any(axis=(1, 2, 3))


def _towards_block(rng: np.random.Generator, starts: np.ndarray, steps: int) -> np.ndarray:
    """(W, T, 2) actions heading from the agent's start to the block's, with noise: most of them push it."""
    heading = starts[:, 2:4] - starts[:, 0:2]  # W 2
    heading /= np.linalg.norm(heading, axis=1, keepdims=True)
    return np.clip(0.8 * heading[:, None] + rng.normal(0, 0.5, size=(len(starts), steps, 2)), -1, 1)


def _errors(batched: np.ndarray, sequential: np.ndarray) -> np.ndarray:
    """(W, T, 5) absolute pose differences, angle wrapped."""
    error = np.abs(batched[..., :5] - sequential[..., :5])
    error[..., 4] = np.abs(wrap_angle(batched[..., 4] - sequential[..., 4]))
    return error


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.float64, 1e-8), (np.float32, 1e-4)])
def test_batched_rollout_matches_sequential_pusht_physics(dtype, tolerance: float) -> None:
    """48 candidates, 25 noisy steps towards the block from starts clear of it: most push it, some into a wall.

    The agent (kinematic, PD-driven) matches to float rounding everywhere, and so does the block wherever it stays
    off the walls (float32 actions run the PD loop in float32, as `PushTPhysics` does: a last-bit difference in
    a world's position then rounds to a neighbouring float32 now and then, hence the looser tolerance). A block
    squeezed flat against a wall is different: there pymunk's contact choice hangs on last-bit rounding (each
    world sits at its own offset; `PushTPhysics` itself gives a different result for a state it placed than for
    the same state reached by stepping), so those trajectories may part."""
    rng = np.random.default_rng(4)
    starts = _clear_starts(rng, 48)
    actions = _towards_block(rng, starts, 25).astype(dtype)
    sequential = _sequential(starts, actions)  # W T 7
    batched = BatchedPushT(48).rollout(starts, actions)  # W T 7
    error = _errors(batched, sequential)  # W T 5
    pushed = np.linalg.norm(sequential[:, -1, 2:4] - starts[:, 2:4], axis=1) > 5
    walls = _touches_wall(sequential) | _touches_wall(batched)
    assert (pushed & ~walls).sum() >= 15 and walls.sum() >= 3  # both kinds are exercised
    assert error[..., :2].max() < tolerance
    np.testing.assert_allclose(batched[..., 5:], sequential[..., 5:], atol=tolerance * 100, rtol=0)
    assert error[~walls].max() < tolerance, error[~walls].max()
    per_candidate = error.max(axis=(1, 2))  # W
    assert np.median(per_candidate) < 1e-9, np.median(per_candidate)
    assert (per_candidate < tolerance).mean() >= 0.8, np.sort(per_candidate)[-5:]


def test_one_world_is_bit_identical_to_sequential_pusht_physics() -> None:
    """A world at offset 0 runs exactly the floating-point operations `PushTPhysics` runs, wall contacts included."""
    rng = np.random.default_rng(4)
    starts = _clear_starts(rng, 12)
    actions = _towards_block(rng, starts, 25)
    simulator = BatchedPushT(1)
    for start, sequence, expected in zip(starts, actions, _sequential(starts, actions), strict=True):
        np.testing.assert_array_equal(simulator.rollout(start[None], sequence[None])[0], expected)


def test_reused_simulator_forgets_previous_contacts_and_runs_fewer_worlds() -> None:
    """A rollout after another one (cached contacts, moved bodies) gives bit for bit what it gives first; a
    smaller batch parks the other worlds, which change nothing."""
    rng = np.random.default_rng(5)
    starts = _clear_starts(rng, 6)
    actions = rng.uniform(-1, 1, size=(6, 25, 2))
    simulator = BatchedPushT(6)
    first = simulator.rollout(starts, actions, every=5)  # W H 7
    simulator.rollout(starts[::-1].copy(), -actions, every=5)
    assert np.array_equal(simulator.rollout(starts, actions, every=5), first)
    assert np.array_equal(simulator.rollout(starts[:2], actions[:2], every=5), first[:2])
    assert first.shape == (6, 5, 7)
    with pytest.raises(LewmError, match="expected"):
        simulator.place(np.zeros((7, 7)))


def test_oracle_rollout_and_cost_shapes() -> None:
    rollout = OracleRollout(chunk=4)
    history = torch.from_numpy(_clear_starts(np.random.default_rng(6), 2))[:, None]  # N 1 7
    context = rollout.prepare(history, None, samples=3, horizon=2)
    predictions = rollout(context, torch.zeros(6, 2, 10))  # (N*S) H 7: 6 candidates in chunks of 4
    assert predictions.shape == (6, 2, 7)
    cost = pose_cost(predictions.reshape(2, 3, 2, 7), history[:, 0])
    assert cost.shape == (2, 3)
    # one world unit of block error along the success test's scale: (1 / 20)^2
    shifted = history[:, 0].clone()
    shifted[:, 2] += 1.0
    expected = torch.full((2, 1), 1 / 400, dtype=torch.float64)
    assert torch.allclose(pose_cost(shifted[:, None, None], history[:, 0]), expected)


def _pushing_pairs(count: int, offset: int) -> Pairs:
    """Start/goal pairs from scripted-expert episodes, starting 20 steps in (the expert is pushing by then), so
    that reaching the goal needs the block moved."""
    states, _ = simulate_pusht(np.arange(count), "expert", 20 + offset + 1, seed=7, noise_std=0.1)
    starts, goals = states[:, 20].astype(np.float64), states[:, 20 + offset].astype(np.float64)
    assert np.median(np.linalg.norm(goals[:, 2:4] - starts[:, 2:4], axis=1)) > 40
    return Pairs(starts=starts, goals=goals, rows=np.arange(count))


@pytest.mark.slow
def test_oracle_cem_beats_random_and_an_inverted_cost_fails() -> None:
    """A small CEM (100 x 8) with the true physics: on these pairs it solves 33-67% depending on its seed, random
    actions none (the block must be pushed to a pose); the same planner maximising the cost solves none."""
    pairs = _pushing_pairs(12, offset=10)
    config = CEMConfig(samples=100, elites=10, iterations=8)
    oracle = run_oracle(pairs, config, budget=50, seed=0)
    random = run_random("pusht", pairs, 32, 50, seed=0)
    inverted = run_oracle(pairs, config, budget=50, seed=0, cost=lambda p, g: -pose_cost(p, g))
    assert not oracle.solved_at_start.any()
    assert oracle.success.mean() >= 0.25, oracle.success
    assert oracle.success.mean() - random.success.mean() >= 0.25, (oracle.success, random.success)
    assert inverted.success.mean() < 0.1, inverted.success
    assert len(oracle.plan_seconds) >= 1 and oracle.final_states.shape == (12, 7)
