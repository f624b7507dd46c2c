"""FastRollout computes what LeWM.rollout computes, and a CEM plan with it picks the same actions."""

from __future__ import annotations

import pytest
import torch

from lewm.model import FastRollout, LeWM
from lewm.planning import CEMConfig, CEMPlanner, GraphedPlanner, PlainRollout

from .conftest import perturb_adaln, tiny_config


def _model(history: int, depth: int = 2) -> LeWM:
    config = tiny_config()
    config.history = history
    config.predictor.depth = depth
    torch.manual_seed(0)
    model = LeWM(config)
    perturb_adaln(model)  # zero-initialised gates would hide mistakes in the attention and MLP paths
    with torch.no_grad():  # BatchNorm running statistics away from (0, 1), as after training
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize(("history", "observed"), [(3, 3), (3, 1), (3, 2), (1, 1), (2, 4), (4, 2)])
def test_fast_rollout_matches_the_eager_rollout(history: int, observed: int) -> None:
    model = _model(history)
    envs, samples, horizon = 2, 7, 5
    generator = torch.Generator().manual_seed(observed)
    emb = torch.randn(envs, observed, 32, generator=generator)  # N h D
    past = torch.randn(envs, observed - 1, model.config.action_block_dim, generator=generator)  # N h-1 K
    blocks = torch.randn(envs * samples, horizon, model.config.action_block_dim, generator=generator)  # B H K
    with torch.inference_mode():
        eager = PlainRollout(model.rollout)
        expected = eager(eager.prepare(emb, past, samples, horizon), blocks)
        fast = FastRollout(model)
        got = fast(fast.prepare(emb, past, samples, horizon), blocks)
    assert got.shape == expected.shape == (envs * samples, horizon, 32)
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    # the sample axis is really per sample: different blocks give different predictions
    assert (got[0] - got[1]).abs().max() > 1e-3


def test_fast_and_eager_plans_agree() -> None:
    model = _model(history=3, depth=3)
    emb = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(5))
    goal = torch.randn(2, 32, generator=torch.Generator().manual_seed(6))
    past = torch.randn(2, 2, model.config.action_block_dim, generator=torch.Generator().manual_seed(7))
    planner = CEMPlanner(CEMConfig(samples=64, elites=8, iterations=6), model.config.action_block_dim)
    with torch.inference_mode():
        eager = planner.plan(model.rollout, emb, goal, past, generator=torch.Generator().manual_seed(0))
        fast = planner.plan(FastRollout(model), emb, goal, past, generator=torch.Generator().manual_seed(0))
    # the same samples are drawn, scored alike, so the same elites are kept every iteration
    for eager_cost, fast_cost in zip(eager.cost_per_iteration, fast.cost_per_iteration, strict=True):
        torch.testing.assert_close(fast_cost, eager_cost, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast.actions, eager.actions, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fast.cost, eager.cost, atol=1e-4, rtol=1e-4)


def test_fast_rollout_needs_eval_mode_and_matching_blocks() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        FastRollout(_model(history=3).train())
    fast = FastRollout(_model(history=3))
    with torch.inference_mode():
        context = fast.prepare(torch.zeros(2, 3, 32), None, samples=4, horizon=5)
        with pytest.raises(ValueError, match="do not fit"):
            fast(context, torch.zeros(2 * 5, 5, fast.model.config.action_block_dim))  # 5 samples, not 4
        with pytest.raises(ValueError, match="do not fit"):
            fast(context, torch.zeros(2 * 4, 6, fast.model.config.action_block_dim))  # horizon 6 > 5


def test_graphed_fast_plan_equals_the_fast_plan() -> None:
    """The whole plan recorded for replay (GraphedPlanner) over FastRollout with history and executed blocks."""
    model = _model(history=3)
    block = model.config.action_block_dim
    planner = CEMPlanner(CEMConfig(samples=24, elites=5, horizon=4, iterations=3), block_dim=block)
    emb, goal, past = torch.randn(2, 3, 32), torch.randn(2, 32), torch.randn(2, 2, block)
    fast = FastRollout(model)
    with torch.inference_mode():
        expected = planner.plan(fast, emb, goal, past, generator=torch.Generator().manual_seed(0))
        got = GraphedPlanner(planner, fast).plan(emb, goal, past, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(got.actions, expected.actions, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.cost, expected.cost, atol=1e-6, rtol=0)


def test_bf16_fast_rollout_stays_close_and_leaves_the_model_alone() -> None:
    """dtype=bf16 computes on a converted copy (no per-call weight casts); predictions come back in fp32."""
    model = _model(history=3)
    emb, past = torch.randn(2, 3, 32), torch.randn(2, 2, model.config.action_block_dim)
    blocks = torch.randn(2 * 5, 4, model.config.action_block_dim)
    with torch.inference_mode():
        exact = FastRollout(model)
        expected = exact(exact.prepare(emb, past, 5, 4), blocks)
        half = FastRollout(model, dtype=torch.bfloat16)
        got = half(half.prepare(emb, past, 5, 4), blocks)
    assert got.dtype == torch.float32 and model.predictor.pos_embedding.dtype == torch.float32
    error = (got - expected).norm() / expected.norm()
    assert 0 < error < 0.05  # bf16 rounding, not a different computation
