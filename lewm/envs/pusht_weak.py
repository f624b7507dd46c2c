"""The reference's Push-T collection policy ("weak"): random actions kept near the block.

stable-worldmodel 0.1.1 collects Push-T data with `WeakPolicy` (envs/pusht/expert_policy.py, dist_constraint
100), not with an expert: each step it draws a uniform action in [-1, 1]^2, turns it into the PD target point
agent + action_scale * action, clips that point to the square block position +- 100 (the block body's position,
i.e. the block frame's origin, our state[2:4]), converts it back to an action ((point - agent) / action_scale)
and clips that to [-1, 1]. Pure random actions rarely touch the block; the clip keeps the agent around it, so a
fair share of windows move the block. This module reproduces that behaviour in our own code.

Seeding differs from the reference on purpose: the reference draws all environments' actions from one policy
generator, whereas each episode here draws its reset and its actions from its own generator seeded with
(seed, episode number), as every lewm collector does, so a file depends on the seed alone.
"""

from __future__ import annotations

import numpy as np

from lewm.envs.pusht import DEFAULT_GEOMETRY, STATE_DIM, PushTGeometry, PushTPhysics, sample_states

DIST_CONSTRAINT = 100.0
"""Half side (world units) of the square around the block that the reference's WeakPolicy keeps targets in."""


def weak_actions(draws: np.ndarray, agent: np.ndarray, block: np.ndarray,
                 geometry: PushTGeometry = DEFAULT_GEOMETRY,
                 dist_constraint: float = DIST_CONSTRAINT) -> np.ndarray:
    """The reference's WeakPolicy action: (..., 2) uniform draws in [-1, 1], agent xy and block xy -> (..., 2)
    float32 actions in [-1, 1] whose target point lies within `dist_constraint` of the block on each axis
    whenever one action step can reach that square (otherwise the action is clipped towards it)."""
    agent = np.asarray(agent, dtype=np.float64)
    block = np.asarray(block, dtype=np.float64)
    target = agent + geometry.action_scale * np.asarray(draws, dtype=np.float64)
    target = np.clip(target, block - dist_constraint, block + dist_constraint)
    return np.clip((target - agent) / geometry.action_scale, -1.0, 1.0).astype(np.float32)


def simulate_pusht_weak(episode_ids: np.ndarray, steps: int, seed: int,
                        geometry: PushTGeometry = DEFAULT_GEOMETRY) -> tuple[np.ndarray, np.ndarray]:
    """Run N episodes of T = `steps` frames with the weak policy: -> states (N, T, 7) float32, actions (N, T, 2)
    float32 (last row NaN), the layout of `simulate_pusht`.

    A separate loop because `simulate_pusht` (pusht_expert.py) knows only its own policies; the reset is the
    same (`sample_states` from the episode's generator), then one (2,) uniform draw per step from that generator.
    The policy reads the live float64 physics state and the physics is stepped with the float32 action as stored.
    """
    states = np.empty((len(episode_ids), steps, STATE_DIM), dtype=np.float32)
    actions = np.full((len(episode_ids), steps, 2), np.nan, dtype=np.float32)
    physics = PushTPhysics(geometry)
    for row, episode in enumerate(episode_ids):
        rng = np.random.default_rng([seed, int(episode)])
        physics.set_state(sample_states(rng, 1, geometry)[0])
        for t in range(steps):
            state = physics.get_state()
            states[row, t] = state
            if t == steps - 1:
                break
            action = weak_actions(rng.uniform(-1.0, 1.0, size=2), state[:2], state[2:4], geometry)
            actions[row, t] = action
            physics.step(action)
    return states, actions
