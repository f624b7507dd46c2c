"""Model predictive path integral (MPPI) control in latent space, batched over environments.

As stable-worldmodel 0.1.1's `MPPISolver` (defaults 300 samples, top 30, temperature 0.5, std 1): each round
samples around the mean with a fixed std, keeps the top-k candidates and moves the mean to their softmax-weighted
average, weights softmax(-(c - c_min) / T). Unlike the reference, candidates are clamped into the action box
before they are scored (the reference scores unclamped actions), so the plan, a convex combination of them, stays
in the box.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lewm.planning.rollout import ActionBounds
from lewm.planning.solver import SamplingSolver, State, gather_samples


def mppi_weights(costs: Tensor, temperature: float) -> Tensor:
    """(N, E) costs -> (N, E) weights softmax(-(c - c_min) / T): summing to 1, the best candidate weighed most."""
    return torch.softmax(-(costs - costs.amin(dim=1, keepdim=True)) / temperature, dim=1)


class MPPIPlanner(SamplingSolver):
    """Batched MPPI over action blocks: fixed sampling std `init_std`, mean = weighted sum of the top `elites`."""

    name = "mppi"

    def iterate(self, runner: Any, context: Any, goal: Tensor, state: State, noise: Tensor,
                bounds: ActionBounds) -> tuple[State, Tensor]:
        """One MPPI round: sample -> roll out -> score -> elites -> update (see `SamplingSolver.iterate`)."""
        (mean,) = state
        # sample around the mean with the fixed std (candidate 0 is the mean), inside the box
        candidates = self.sample_around(mean, self.config.init_std, noise, bounds)  # N S H K
        # roll out and score
        costs = self.score(runner, context, goal, candidates)  # N S
        # elites: the top-k, weighed by their costs
        elite_costs, elite_index = costs.topk(self.config.elites, dim=1, largest=False)  # N E
        elites = gather_samples(candidates, elite_index)  # N E H K
        # update: the weighted mean of the elites
        mean = torch.einsum("ne,nehk->nhk", mppi_weights(elite_costs, self.config.temperature), elites)  # N H K
        return (mean,), elite_costs[:, 0]
