"""Cross-entropy method (CEM) in latent space, batched over several environments at once.

Each round runs the same labelled stages for all N environments and S samples in one pass:
sample -> roll out -> score -> elites -> update. Nothing loops over samples in Python; the only loop is over
rounds (and, inside the model's rollout, over the H horizon steps).

Candidates are clamped into the action box (`ActionBounds`) in the sample stage, before the rollout, so the model
only ever scores actions the environment will execute unchanged; every elite is then inside the box, and so is
their mean (the plan). stable-worldmodel 0.1.1's `CEMSolver` does not clamp; inside an unbounded box the two make
the same plan for the same seed (tests/planning/test_reference_solvers.py).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lewm.planning.rollout import ActionBounds
from lewm.planning.solver import SamplingSolver, State, gather_samples


class CEMPlanner(SamplingSolver):
    """Batched CEM over action blocks of size K = frameskip * A: sample around the mean, refit mean and std to the
    elites, return the mean (stable-worldmodel's `CEMSolver` defaults: 300 samples, top 30, std 1)."""

    name = "cem"

    def start(self, mean: Tensor) -> State:
        """Mean (N, H, K) and std `init_std` (N, H, K)."""
        return mean, torch.full_like(mean, self.config.init_std)

    def iterate(self, runner: Any, context: Any, goal: Tensor, state: State, noise: Tensor,
                bounds: ActionBounds) -> tuple[State, Tensor]:
        """One CEM round: sample -> roll out -> score -> elites -> update (see `SamplingSolver.iterate`)."""
        mean, std = state
        # sample, clamped into the action box so the model scores what the environment will execute
        candidates = self.sample_around(mean, std, noise, bounds)  # N S H K
        # roll out and score
        costs = self.score(runner, context, goal, candidates)  # N S
        # elites: the lowest costs
        elite_costs, elite_index = costs.topk(self.config.elites, dim=1, largest=False)  # N E
        elites = gather_samples(candidates, elite_index)  # N E H K
        # update the sampling distribution
        mean = elites.mean(dim=1)  # N H K
        std = elites.std(dim=1).clamp_min(self.config.min_std)  # N H K
        return (mean, std), elite_costs[:, 0]
