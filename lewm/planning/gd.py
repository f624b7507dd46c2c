"""Gradient descent on the action sequence through the differentiable rollout, batched over environments.

As stable-worldmodel 0.1.1's `GradientSolver` (SGD, learning rate 1, 1 sample): the S sequences of each
environment start at the mean (zeros or the warm start) and, for samples 1..S-1, the mean plus `init_std` noise;
each step lowers the sum of their costs by one SGD step; the plan is each environment's lowest-cost sequence.
Two differences from the reference, both so the plan is one the environment executes as planned: every step is
followed by a projection into the action box (a clamp), and the lowest-cost sequence is chosen on the costs after
the last step (the reference ranks the sequences on the costs computed before its last step).

The rollout must be differentiable with respect to the action blocks: `LeWM.rollout`, or a
`lewm.model.FastRollout` built outside `torch.inference_mode` (its folded weights are then ordinary tensors).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lewm.planning.rollout import as_runner
from lewm.planning.solver import PlanResult, Solver, gather_samples


class GradientPlanner(Solver):
    """Batched projected gradient descent on (N, S, H, K) action sequences; returns the best of the S per env."""

    name = "gd"

    def starting_points(self, mean: Tensor, generator: torch.Generator | None) -> Tensor:
        """(N, S, H, K): the (N, H, K) mean for sample 0, the mean plus `init_std` noise for the others."""
        cfg = self.config
        points = mean[:, None].repeat(1, cfg.samples, 1, 1)  # N S H K
        noise = torch.randn(points[:, 1:].shape, device=mean.device, generator=generator)  # N S-1 H K
        points[:, 1:] += cfg.init_std * noise
        return points

    def plan(self, rollout: Any, emb_history: Tensor, goal: Tensor, past_blocks: Tensor | None = None,
             generator: torch.Generator | None = None, init_actions: Tensor | None = None) -> PlanResult:
        cfg = self.config
        envs, device = emb_history.shape[0], emb_history.device
        runner, bounds = as_runner(rollout), self.bounds.to(device)
        with torch.no_grad():
            start = bounds.clamp(self.starting_points(self.start_mean(envs, device, init_actions), generator))
        # ordinary tensors (the caller may be in inference mode), and gradients on the actions only
        with torch.inference_mode(False), torch.enable_grad():
            actions = start.clone().requires_grad_(True)  # N S H K
            history, target = emb_history.clone(), goal.clone()
            past = None if past_blocks is None else past_blocks.clone()
            context = runner.prepare(history, past, cfg.samples, cfg.horizon)
            optimiser = torch.optim.SGD([actions], lr=cfg.lr)
            trace = []
            for _ in range(cfg.iterations):
                # roll out and score every sequence, then one step down the gradient of their summed cost
                costs = self.score(runner, context, target, actions)  # N S
                (actions.grad,) = torch.autograd.grad(costs.sum(), actions)
                optimiser.step()
                with torch.no_grad():  # project into the action box
                    actions.copy_(bounds.clamp(actions))
                trace.append(costs.detach().amin(dim=1))
            with torch.no_grad():  # rank the sequences on their costs after the last step
                costs = self.score(runner, context, target, actions)  # N S
                best_cost, best_index = costs.min(dim=1, keepdim=True)  # N 1
                plan = gather_samples(actions.detach(), best_index)[:, 0]  # N H K
        return PlanResult(actions=plan, cost=best_cost[:, 0], cost_per_iteration=trace)
