"""Toy latent models the planning tests share, as fixtures (the tests import no helper module)."""

from __future__ import annotations

import pytest
import torch

from lewm.planning import PlainRollout


def _pull_towards(history: torch.Tensor, blocks: torch.Tensor, past: torch.Tensor | None) -> torch.Tensor:
    """A nonlinear latent model: the state moves by tanh(action) and is squashed a little every step."""
    state, out = history[:, -1], []
    for step in range(blocks.shape[1]):
        state = 0.9 * state + torch.tanh(blocks[:, step])
        out.append(state)
    return torch.stack(out, dim=1)  # B H D


class Recorder(PlainRollout):
    """A rollout that keeps every candidate it scores (the linear model: running sum of actions)."""

    def __init__(self) -> None:
        super().__init__(lambda history, blocks, past: history[:, -1:] + blocks.cumsum(dim=1))
        self.seen: list[torch.Tensor] = []

    def __call__(self, context: dict, action_blocks: torch.Tensor) -> torch.Tensor:
        self.seen.append(action_blocks.detach().clone())
        return super().__call__(context, action_blocks)


@pytest.fixture
def pull_towards():
    """The nonlinear toy model `(history, blocks, past) -> predictions`."""
    return _pull_towards


@pytest.fixture
def recording_rollout():
    """The class of a linear toy rollout that records the candidates it scores: `recording_rollout()` makes one."""
    return Recorder
