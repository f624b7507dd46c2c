"""The interface every solver shares, and the loop of the sampling solvers.

A solver plans H action blocks for each of N environments at once: `plan(rollout, emb_history, goal,
past_blocks, generator, init_actions) -> PlanResult`. The sampling solvers (CEM, iCEM, MPPI, predictive
sampling) differ only in `start` (the search state built from the initial mean) and `iterate` (one round of
sample -> roll out -> score -> elites -> update on that state); `SamplingSolver.plan` runs the rounds, and
`lewm.planning.GraphedPlanner` records the same rounds as one CUDA graph. Gradient descent plans its own way
(`lewm.planning.gd`).

Warm start: `init_actions` (N, h, K) with h <= H seeds the initial mean (or nominal plan, or gd's starting
sequence) with a previous plan's unexecuted tail; the blocks after it start at zero, as in stable-worldmodel.

Shapes: N environments, S samples, H horizon, K block size (frameskip x action dim), D embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from lewm.planning.config import PlannerConfig
from lewm.planning.rollout import ActionBounds, CostFn, as_runner, final_embedding_cost, shaped_bounds

State = tuple[Tensor, ...]
"""A sampling solver's search state: tensors only (a CUDA graph carries it from one round to the next); the plan
(N, H, K) is always its first element."""


@dataclass
class PlanResult:
    """A plan for each environment and how the search went."""

    actions: Tensor
    """(N, H, K) the plan: normalised action blocks to execute."""
    cost: Tensor
    """(N,) predicted cost of `actions`."""
    cost_per_iteration: list[Tensor] = field(default_factory=list)
    """Best cost (N,) found in each iteration, for diagnostics."""


class Solver:
    """What all solvers share: settings, block size K = frameskip * A, the cost and the (H, K) action box."""

    name = "solver"

    def __init__(self, config: PlannerConfig, block_dim: int, cost: CostFn = final_embedding_cost,
                 bounds: ActionBounds | None = None) -> None:
        config.validate()
        if config.solver != self.name:
            raise ValueError(f"planner.solver = {config.solver!r} given to the {self.name} solver")
        self.config = config
        self.block_dim = block_dim
        self.cost = cost
        self.bounds = shaped_bounds(bounds, config.horizon, block_dim)
        """(H, K) limits on every candidate, normalised units; +-inf when unbounded."""

    def start_mean(self, envs: int, device: torch.device, init_actions: Tensor | None = None) -> Tensor:
        """(N, H, K) first mean: zeros, or the warm start's h <= H blocks followed by zeros."""
        mean = torch.zeros(envs, self.config.horizon, self.block_dim, device=device)  # N H K
        if init_actions is not None:
            if init_actions.shape[0] != envs or init_actions.shape[1] > self.config.horizon \
                    or init_actions.shape[2] != self.block_dim:
                raise ValueError(f"init_actions {tuple(init_actions.shape)} must be (N {envs}, h <= "
                                 f"{self.config.horizon}, K {self.block_dim})")
            mean[:, : init_actions.shape[1]] = init_actions
        return mean

    def final_cost(self, runner: Any, emb_history: Tensor, past_blocks: Tensor | None, goal: Tensor,
                   actions: Tensor) -> Tensor:
        """The predicted cost (N,) of executing `actions` (N, H, K), one rollout per environment."""
        predictions = runner(runner.prepare(emb_history, past_blocks, 1, actions.shape[1]), actions)  # N H D
        return self.cost(rearrange(predictions, "n h d -> n 1 h d"), goal)[:, 0]

    def score(self, runner: Any, context: Any, goal: Tensor, candidates: Tensor) -> Tensor:
        """roll out all N*S candidates (N, S, H, K) through the model in one batch, then score them: cost (N, S)."""
        flat = rearrange(candidates, "n s h k -> (n s) h k")
        predictions = rearrange(runner(context, flat), "(n s) h d -> n s h d", n=candidates.shape[0])
        return self.cost(predictions, goal)  # N S

    def plan(self, rollout: Any, emb_history: Tensor, goal: Tensor, past_blocks: Tensor | None = None,
             generator: torch.Generator | None = None, init_actions: Tensor | None = None) -> PlanResult:
        """Plan H blocks for each of N environments.

        rollout: a plain `RolloutFn` or an object with `prepare` and `__call__` as `PlainRollout`;
        emb_history (N, h, D): embeddings of the observed frames; goal (N, D): goal embeddings;
        past_blocks (N, h-1, K): blocks executed between the observed frames (None = zeros);
        init_actions (N, h', K): a warm start (see the module docstring).
        """
        raise NotImplementedError


class SamplingSolver(Solver):
    """A solver made of rounds that draw (N, S, H, K) standard normal noise and update a `State`."""

    def start(self, mean: Tensor) -> State:
        """The search state before the first round, from the (N, H, K) first mean: the mean alone unless the
        solver carries more (CEM's std, iCEM's kept elites)."""
        return (mean,)

    def iterate(self, runner: Any, context: Any, goal: Tensor, state: State, noise: Tensor,
                bounds: ActionBounds) -> tuple[State, Tensor]:
        """One round for all N environments; returns the next state and the round's best cost (N,).

        noise (N, S, H, K) standard normal draws, the solver's to overwrite; bounds: `self.bounds` on the device.
        No host synchronisation, no data-dependent Python branches: a CUDA graph can capture it."""
        raise NotImplementedError

    @staticmethod
    def sample_around(mean: Tensor, std: Tensor | float, noise: Tensor, bounds: ActionBounds) -> Tensor:
        """Candidates (N, S, H, K) mean + std * noise, candidate 0 the (N, H, K) mean itself, clamped into the box
        so the model scores what the environment will execute. Overwrites noise[:, 0]."""
        noise[:, 0] = 0.0
        std = std[:, None] if isinstance(std, Tensor) else std
        return bounds.clamp(mean[:, None] + std * noise)  # N S H K

    def noise_shape(self, envs: int) -> tuple[int, ...]:
        """Shape of one round's standard normal draws, in the order they are drawn: (N, S, H, K)."""
        return envs, self.config.samples, self.config.horizon, self.block_dim

    def noise_view(self, draws: Tensor) -> Tensor:
        """One round's draws (`noise_shape`) seen as (N, S, H, K)."""
        return draws

    def draw_noise(self, envs: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
        """(N, S, H, K) standard normal draws for one round."""
        return self.noise_view(torch.randn(self.noise_shape(envs), device=device, generator=generator))

    @torch.no_grad()
    def plan(self, rollout: Any, emb_history: Tensor, goal: Tensor, past_blocks: Tensor | None = None,
             generator: torch.Generator | None = None, init_actions: Tensor | None = None) -> PlanResult:
        cfg = self.config
        envs, device = emb_history.shape[0], emb_history.device
        runner = as_runner(rollout)
        bounds = self.bounds.to(device)  # H K each, moved once per plan
        state = self.start(self.start_mean(envs, device, init_actions))
        # what every sample shares (the observed history) is prepared once and reused every round
        context = runner.prepare(emb_history, past_blocks, cfg.samples, cfg.horizon)
        trace = []
        for _ in range(cfg.iterations):
            state, best = self.iterate(runner, context, goal, state, self.draw_noise(envs, device, generator), bounds)
            trace.append(best)
        final = self.final_cost(runner, emb_history, past_blocks, goal, state[0])
        return PlanResult(actions=state[0], cost=final, cost_per_iteration=trace)


def gather_samples(candidates: Tensor, index: Tensor) -> Tensor:
    """candidates (N, S, H, K) picked by index (N, E) -> (N, E, H, K)."""
    return torch.gather(candidates, 1, index[:, :, None, None].expand(-1, -1, *candidates.shape[2:]))
