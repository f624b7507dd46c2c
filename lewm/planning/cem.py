"""Cross-entropy method (CEM) in latent space, batched over several environments at once.

Each iteration runs the same labelled stages for all N environments and S samples in one pass:
sample -> roll out -> score -> elites -> update. Nothing loops over samples in Python; the only loop is over
iterations (and, inside the model's rollout, over the H horizon steps).

The planner knows nothing about LeWM: it takes a rollout (embedding history and action blocks in, predicted
embeddings out) and a `cost` on the predictions, so the same solver plans with a learned model or, in tests,
with the true dynamics. A rollout is either a plain function, which `PlainRollout` runs on the history repeated
for every sample (the eager path), or an object with the same two methods as `PlainRollout` that can compute
what all samples share once per plan (`lewm.model.FastRollout`).

Candidates can be bounded per element (`ActionBounds`): the environment's action box in the normalised units CEM
samples in. They are clamped in the sample stage, before the rollout, so the model only ever scores actions the
environment will execute unchanged; every elite is then inside the box, and so is their mean (the plan).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from einops import rearrange, repeat
from torch import Tensor

from lewm.config import check_field, check_positive_ints

RolloutFn = Callable[[Tensor, Tensor, Tensor | None], Tensor]
"""(emb_history (B, h, D), action_blocks (B, H, K), past_blocks (B, h-1, K) | None) -> predictions (B, H, D)."""

CostFn = Callable[[Tensor, Tensor], Tensor]
"""(predictions (N, S, H, D), goal (N, D)) -> cost (N, S); lower is better."""


class PlainRollout:
    """The eager path: a `RolloutFn` (e.g. `LeWM.rollout`) run on the history repeated for every sample."""

    def __init__(self, rollout: RolloutFn) -> None:
        self.rollout = rollout

    def prepare(self, emb_history: Tensor, past_blocks: Tensor | None, samples: int, horizon: int) -> dict:
        """What every call of one plan reuses: the (N, h, D) history and (N, h-1, K) blocks repeated S times."""
        history = repeat(emb_history, "n h d -> (n s) h d", s=samples)  # (N*S) h D
        past = None if past_blocks is None else repeat(past_blocks, "n h k -> (n s) h k", s=samples)
        return {"history": history, "past": past}

    def __call__(self, context: dict, action_blocks: Tensor) -> Tensor:
        """(N*S, H, K) candidate blocks -> (N*S, H, D) predicted embeddings."""
        return self.rollout(context["history"], action_blocks, context["past"])


def final_embedding_cost(predictions: Tensor, goal: Tensor) -> Tensor:
    """Squared L2 distance between the last predicted embedding and the goal embedding (docs/reference.md section 5)."""
    last = predictions[:, :, -1]  # N S D
    return ((last - goal[:, None]) ** 2).sum(dim=-1)  # N S


@dataclass
class CEMConfig:
    """CEM settings; defaults are the paper's (300 samples, top 30, horizon 5, 30 iterations, std 1)."""

    samples: int = 300
    """S: candidate action sequences per environment and iteration (sample 0 is the current mean)."""
    elites: int = 30
    """Lowest-cost candidates whose mean and std become the next sampling distribution."""
    horizon: int = 5
    """H: action blocks per plan (each block is frameskip raw actions)."""
    iterations: int = 30
    """Refinement rounds (paper: 30 on Push-T, 10 elsewhere)."""
    init_std: float = 1.0
    """Initial standard deviation in normalised action space (the mean starts at 0)."""
    min_std: float = 0.0
    """Floor on the sampling std (0 lets CEM converge fully)."""

    def validate(self, prefix: str = "planner") -> None:
        check_positive_ints(self, ("samples", "elites", "horizon", "iterations"), prefix)
        check_field(self.elites >= 2, f"{prefix}.elites", self.elites,
                    "must be >= 2 (the std of a single elite is NaN)")
        check_field(self.elites <= self.samples, f"{prefix}.elites", self.elites, f"must be <= samples {self.samples}")
        check_field(_is_number(self.init_std) and math.isfinite(self.init_std) and self.init_std > 0,
                    f"{prefix}.init_std", self.init_std, "must be a finite number > 0")
        check_field(_is_number(self.min_std) and math.isfinite(self.min_std) and self.min_std >= 0,
                    f"{prefix}.min_std", self.min_std, "must be a finite number >= 0")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class ActionBounds:
    """Per-element lower and upper limits on the candidates, in normalised action units.

    Each is (H, K) after construction (give (K,), (1, K) or (H, K): anything that broadcasts to one plan), the
    same for every environment, because the planner plans for a varying subset of the environments. Infinite
    limits leave an element free.
    """

    lower: Tensor
    upper: Tensor

    def to(self, device: torch.device) -> ActionBounds:
        """Float32 copies on `device`, made once per plan (a CUDA graph reads them, it must not copy them)."""
        return ActionBounds(self.lower.to(device, torch.float32), self.upper.to(device, torch.float32))


def shaped_bounds(bounds: ActionBounds | None, horizon: int, block_dim: int) -> ActionBounds:
    """`bounds` broadcast to (H, K) and checked; None -> (-inf, +inf), so the clamp stays one unconditional step."""
    if bounds is None:
        lower = torch.full((horizon, block_dim), -math.inf)
        return ActionBounds(lower, -lower)
    try:
        lower = torch.as_tensor(bounds.lower, dtype=torch.float32).expand(horizon, block_dim).contiguous()  # H K
        upper = torch.as_tensor(bounds.upper, dtype=torch.float32).expand(horizon, block_dim).contiguous()  # H K
    except RuntimeError as error:
        raise ValueError(f"action bounds must broadcast to (horizon {horizon}, block {block_dim}): {error}") from error
    if lower.isnan().any() or upper.isnan().any() or (lower > upper).any():
        raise ValueError("action bounds: every lower limit must be <= its upper limit (and not NaN)")
    return ActionBounds(lower, upper)


@dataclass
class PlanResult:
    """A plan for each environment and how the search went."""

    actions: Tensor
    """(N, H, K) the final CEM mean: normalised action blocks to execute."""
    cost: Tensor
    """(N,) predicted cost of `actions`."""
    cost_per_iteration: list[Tensor] = field(default_factory=list)
    """Best elite cost (N,) after each iteration, for diagnostics."""


class CEMPlanner:
    """Batched CEM over action blocks of size K = frameskip * A, optionally inside per-element `bounds`."""

    def __init__(self, config: CEMConfig, block_dim: int, cost: CostFn = final_embedding_cost,
                 bounds: ActionBounds | None = None) -> None:
        config.validate()
        self.config = config
        self.block_dim = block_dim
        self.cost = cost
        self.bounds = shaped_bounds(bounds, config.horizon, block_dim)
        """(H, K) limits on every candidate, normalised units; +-inf when unbounded."""

    def initial_distribution(self, envs: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """The first sampling distribution: mean 0 and std `init_std`, each (N, H, K)."""
        mean = torch.zeros(envs, self.config.horizon, self.block_dim, device=device)  # N H K
        return mean, torch.full_like(mean, self.config.init_std)

    def iterate(self, runner: PlainRollout, context: dict, goal: Tensor, mean: Tensor, std: Tensor,
                noise: Tensor, bounds: ActionBounds) -> tuple[Tensor, Tensor, Tensor]:
        """One CEM iteration for all N environments: sample -> roll out -> score -> elites -> update.

        noise (N, S, H, K) standard normal draws (candidate 0's row is overwritten with zeros); mean and std
        (N, H, K); bounds: `self.bounds` on the device (H, K each). Returns the next mean and std and the best
        elite cost (N,). No host synchronisation, no data-dependent Python branches: a CUDA graph can capture it.
        """
        cfg = self.config
        envs = mean.shape[0]
        # sample: mean + std * noise, with candidate 0 the mean itself, clamped into the action box so the model
        # scores what the environment will execute
        noise[:, 0] = 0.0
        candidates = (mean[:, None] + std[:, None] * noise).clamp(bounds.lower, bounds.upper)  # N S H K
        # roll out: all N*S candidates through the model in one batch
        flat = rearrange(candidates, "n s h k -> (n s) h k")
        predictions = runner(context, flat)  # (N*S) H D
        predictions = rearrange(predictions, "(n s) h d -> n s h d", n=envs)
        # score
        costs = self.cost(predictions, goal)  # N S
        # elites: the lowest costs
        elite_costs, elite_index = costs.topk(cfg.elites, dim=1, largest=False)  # N E
        elites = torch.gather(
            candidates, 1, repeat(elite_index, "n e -> n e h k", h=cfg.horizon, k=self.block_dim)
        )  # N E H K
        # update the sampling distribution
        mean = elites.mean(dim=1)  # N H K
        std = elites.std(dim=1).clamp_min(cfg.min_std)  # N H K
        return mean, std, elite_costs[:, 0]

    def final_cost(self, runner: PlainRollout, emb_history: Tensor, past_blocks: Tensor | None, goal: Tensor,
                   actions: Tensor) -> Tensor:
        """The predicted cost (N,) of executing `actions` (N, H, K), one rollout per environment."""
        predictions = runner(runner.prepare(emb_history, past_blocks, 1, actions.shape[1]), actions)  # N H D
        return self.cost(rearrange(predictions, "n h d -> n 1 h d"), goal)[:, 0]

    @torch.no_grad()
    def plan(
        self,
        rollout: RolloutFn | PlainRollout,
        emb_history: Tensor,
        goal: Tensor,
        past_blocks: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult:
        """Plan H blocks for each of N environments.

        rollout: a plain `RolloutFn` or an object with `prepare` and `__call__` as `PlainRollout`;
        emb_history (N, h, D): embeddings of the observed frames; goal (N, D): goal embeddings;
        past_blocks (N, h-1, K): blocks executed between the observed frames (None = zeros).
        """
        cfg = self.config
        envs, device = emb_history.shape[0], emb_history.device
        runner = rollout if hasattr(rollout, "prepare") else PlainRollout(rollout)
        bounds = self.bounds.to(device)  # H K each, moved once per plan
        mean, std = self.initial_distribution(envs, device)  # N H K each
        # what every sample shares (the observed history) is prepared once and reused every iteration
        context = runner.prepare(emb_history, past_blocks, cfg.samples, cfg.horizon)
        trace = []
        for _ in range(cfg.iterations):
            noise = torch.randn(envs, cfg.samples, cfg.horizon, self.block_dim, device=device, generator=generator)
            mean, std, best = self.iterate(runner, context, goal, mean, std, noise, bounds)
            trace.append(best)
        final = self.final_cost(runner, emb_history, past_blocks, goal, mean)
        return PlanResult(actions=mean, cost=final, cost_per_iteration=trace)
