"""The reference's Push-T collection policy ("weak"): random actions kept near the block.

stable-worldmodel 0.1.1 collects Push-T data with `WeakPolicy` (envs/pusht/expert_policy.py, dist_constraint
100), not with an expert: each step it draws a uniform action in [-1, 1]^2, turns it into the PD target point
agent + action_scale * action, clips that point to the square block position +- 100 (the block body's position,
i.e. the block frame's origin, our state[2:4]), converts it back to an action ((point - agent) / action_scale)
and clips that to [-1, 1]. Pure random actions rarely touch the block; the clip keeps the agent around it, so a
fair share of windows move the block. This module reproduces that behaviour in our own code;
`lewm.envs.pusht_expert.simulate_pusht(..., policy="weak")` runs it.

Seeding differs from the reference on purpose: the reference draws all environments' actions from one policy
generator, whereas each episode here draws its reset and its actions from its own generator seeded with
(seed, episode number), as every lewm collector does, so a file depends on the seed alone.
"""

from __future__ import annotations

import numpy as np

from lewm.envs.pusht import DEFAULT_GEOMETRY, PushTGeometry

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
