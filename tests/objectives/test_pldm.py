"""The PLDM baseline's terms have the values their definitions give, and the objective trains without collapse."""

from __future__ import annotations

import pytest
import torch

from lewm.objectives import PLDMObjective
from lewm.objectives.pldm_objective import covariance_penalty, variance_hinge


def test_variance_hinge_charges_only_dimensions_with_std_below_one() -> None:
    generator = torch.Generator().manual_seed(0)
    wide = 3.0 * torch.randn(4, 4096, 16, generator=generator)  # std 3 in every dimension
    assert variance_hinge(wide) == 0.0
    constant = torch.ones(4, 64, 16)
    assert variance_hinge(constant) == pytest.approx(1.0 - 1e-2, abs=1e-6)  # std sqrt(eps) = 0.01
    half = torch.cat([wide[..., :8], torch.zeros(4, 4096, 8)], dim=-1)  # half the dimensions dead
    assert variance_hinge(half) == pytest.approx(0.5 * (1.0 - 1e-2), abs=1e-4)


def test_covariance_penalty_is_small_for_independent_and_large_for_copied_dimensions() -> None:
    generator = torch.Generator().manual_seed(1)
    independent = torch.randn(2, 8192, 8, generator=generator)
    copied = independent[..., :1].expand(-1, -1, 8)  # 8 copies of one unit-variance dimension
    assert covariance_penalty(independent) < 0.01
    # every off-diagonal covariance is 1: 8 * 7 entries / D = 7
    assert covariance_penalty(copied) == pytest.approx(7.0, rel=0.05)


def test_objective_terms_and_weights() -> None:
    generator = torch.Generator().manual_seed(2)
    emb = torch.randn(64, 4, 16, generator=generator)  # B T D
    pred = emb[:, 1:4] + 0.1  # predictions 0.1 off in every coordinate
    objective = PLDMObjective(embed_dim=16)
    terms = objective(emb, pred, seed=0)
    assert terms["pred_loss"] == pytest.approx(0.01, rel=1e-4)
    # consecutive frames are independent N(0, 1): E (z_t+1 - z_t)^2 = 2
    assert terms["time_similarity"] == pytest.approx(2.0, rel=0.1)
    assert terms["inverse_dynamics"] == 0.0
    expected = terms["pred_loss"] + 18 * terms["variance"] + 12 * terms["covariance"] \
        + 0.2 * terms["time_similarity"] + 0.7 * terms["time_variance"]
    assert terms["loss"] == pytest.approx(float(expected), rel=1e-6)
    # frames constant over time: no time-similarity cost, full time-variance cost
    still = emb[:, :1].expand(-1, 4, -1)
    terms = objective(still, still[:, 1:], seed=0)
    assert terms["time_similarity"] == 0.0 and terms["time_variance"] == pytest.approx(0.99, abs=1e-3)


def test_inverse_dynamics_head_learns_the_action_between_two_frames() -> None:
    torch.manual_seed(3)
    objective = PLDMObjective(embed_dim=4, action_block_dim=2, inverse_dynamics_weight=1.0, hidden=32)
    optimizer = torch.optim.Adam(objective.parameters(), lr=1e-2)
    first = None
    for _ in range(300):
        emb = torch.randn(128, 3, 4)  # B T D
        actions = (emb[:, 1:, :2] - emb[:, :-1, :2])  # the action is the displacement of two coordinates
        actions = torch.cat([actions, torch.zeros(128, 1, 2)], dim=1)  # B T 2 (the last block is unused)
        terms = objective(emb, emb[:, 1:], seed=0, actions=actions)
        optimizer.zero_grad()
        terms["inverse_dynamics"].backward()
        optimizer.step()
        first = first if first is not None else float(terms["inverse_dynamics"].detach())
    assert float(terms["inverse_dynamics"].detach()) < 0.05 * first
