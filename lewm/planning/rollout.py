"""What every solver plans with: a rollout (embedding history and action blocks in, predicted embeddings out), a
cost on the predictions, and the action box the candidates must stay in.

The solvers know nothing about LeWM, so the same solver plans with a learned model or, in tests, with the true
dynamics. A rollout is either a plain function, which `PlainRollout` runs on the history repeated for every
sample (the eager path), or an object with the same two methods as `PlainRollout` that computes what all samples
share once per plan (`lewm.model.FastRollout`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from einops import repeat
from torch import Tensor

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


def as_runner(rollout: Any) -> Any:
    """A rollout with `prepare` and `__call__` (`PlainRollout`-like) as it is; a plain `RolloutFn` wrapped."""
    return rollout if hasattr(rollout, "prepare") else PlainRollout(rollout)


def final_embedding_cost(predictions: Tensor, goal: Tensor) -> Tensor:
    """Squared L2 distance between the last predicted embedding and the goal embedding (docs/reference.md section 5)."""
    last = predictions[:, :, -1]  # N S D
    return ((last - goal[:, None]) ** 2).sum(dim=-1)  # N S


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

    def clamp(self, actions: Tensor) -> Tensor:
        """`actions` (..., H, K) projected into the box, element by element."""
        return actions.clamp(self.lower, self.upper)


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
