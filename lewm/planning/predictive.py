"""Predictive sampling (Howell et al. 2022) in latent space, batched over environments.

As stable-worldmodel 0.1.1's `PredictiveSamplingSolver` (defaults 300 samples, noise 1, one round): sample around
a nominal plan (candidate 0 is the nominal plan itself, so the result is never worse than the warm start) and
keep the best candidate. More than one round (`iterations`) repeats this around the best so far, a greedy random
search. Candidates are clamped into the action box before they are scored.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lewm.planning.rollout import ActionBounds
from lewm.planning.solver import SamplingSolver, State, gather_samples


class PredictiveSamplingPlanner(SamplingSolver):
    """Batched predictive sampling over action blocks: the nominal plan becomes the best of S candidates."""

    name = "ps"

    def iterate(self, runner: Any, context: Any, goal: Tensor, state: State, noise: Tensor,
                bounds: ActionBounds) -> tuple[State, Tensor]:
        """One round: sample -> roll out -> score -> best -> update (see `SamplingSolver.iterate`)."""
        (nominal,) = state
        # sample around the nominal plan, which stays candidate 0, inside the box
        candidates = self.sample_around(nominal, self.config.init_std, noise, bounds)  # N S H K
        # roll out and score
        costs = self.score(runner, context, goal, candidates)  # N S
        # the best candidate becomes the nominal plan
        best_cost, best_index = costs.min(dim=1, keepdim=True)  # N 1
        return (gather_samples(candidates, best_index)[:, 0],), best_cost[:, 0]
