"""CEM's own behaviour: it finds a linear model's optimum, its sample 0 is the mean, its std floor, its bounds and
its settings' checks (with the true Two-Room dynamics it is tested beside the other solvers in test_solvers.py)."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from lewm.errors import LewmError
from lewm.planning import ActionBounds, CEMConfig, CEMPlanner, PlainRollout, final_embedding_cost


def test_cem_finds_the_optimum_of_a_linear_model() -> None:
    """Embedding = running sum of actions: the best plan makes the final sum equal the goal."""

    def rollout(history, blocks, past):
        return history[:, -1:] + blocks.cumsum(dim=1)  # B H K

    planner = CEMPlanner(CEMConfig(samples=200, elites=20, horizon=3, iterations=25), block_dim=2)
    goal = torch.tensor([[1.5, -0.6], [0.0, 0.9]])
    history = torch.zeros(2, 1, 2)
    result = planner.plan(rollout, history, goal, generator=torch.Generator().manual_seed(1))
    final = result.actions.sum(dim=1)  # N K
    torch.testing.assert_close(final, goal, atol=0.05, rtol=0)
    assert result.cost.max() < 5e-3
    costs = torch.stack(result.cost_per_iteration)  # iterations N
    assert (costs[-1] <= costs[0]).all()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("samples", 0, "planner.samples = 0"), ("elites", 500, "planner.elites = 500"),
    ("elites", 1, "planner.elites = 1 is invalid: must be >= 2"),
    ("init_std", 0.0, "planner.init_std = 0.0"), ("init_std", float("inf"), "planner.init_std = inf"),
    ("min_std", -0.1, "planner.min_std = -0.1 is invalid: must be a finite number >= 0"),
    ("min_std", float("nan"), "planner.min_std = nan"), ("min_std", float("inf"), "planner.min_std = inf"),
])
def test_bad_planner_config_is_named(field: str, value, message: str) -> None:
    config = CEMConfig()
    setattr(config, field, value)
    with pytest.raises(LewmError, match=message):
        CEMPlanner(config, block_dim=10)


def test_positive_min_std_is_a_floor_on_the_sampling_std() -> None:
    planner = CEMPlanner(CEMConfig(samples=16, elites=4, horizon=2, iterations=1, min_std=0.25), block_dim=3)
    mean, std = planner.start(planner.start_mean(2, torch.device("cpu")))
    bounds = planner.bounds.to(torch.device("cpu"))
    noise = torch.randn(2, 16, 2, 3, generator=torch.Generator().manual_seed(0)) * 1e-3  # elites nearly equal
    (_, std), _ = planner.iterate(PlainRollout(lambda h, b, p: b.cumsum(dim=1)), {"history": None, "past": None},
                                  torch.ones(2, 3), (mean, std), noise, bounds)
    assert (std == 0.25).all()




def test_cem_sample_zero_is_the_mean_and_seed_is_reproducible(recording_rollout) -> None:
    """Candidate 0 of every environment and iteration is the current mean: zeros at first, then the mean of the
    previous iteration's elites (recomputed here from the candidates the rollout was given); the plan is the last
    mean, and the same generator seed gives the same plan."""
    config = CEMConfig(samples=16, elites=4, horizon=2, iterations=4)
    planner = CEMPlanner(config, block_dim=3)
    recorder = recording_rollout()
    goal = torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.3, -1.0]])
    history = torch.zeros(2, 1, 3)
    result = planner.plan(recorder, history, goal, generator=torch.Generator().manual_seed(5))
    *iterations, final = [rearrange(c, "(n s) h k -> n s h k", n=2) for c in recorder.seen]
    assert len(iterations) == config.iterations and final.shape == (2, 1, 2, 3)
    mean = torch.zeros(2, 2, 3)  # N H K: the first distribution is centred on no action
    for candidates in iterations:  # N S H K
        torch.testing.assert_close(candidates[:, 0], mean, rtol=0, atol=0)
        assert (candidates[:, 1:] != mean[:, None]).any(dim=(2, 3)).all()  # the others are drawn around it
        costs = final_embedding_cost(candidates.cumsum(dim=2), goal)  # the recorder's model: running sum
        elites = costs.topk(config.elites, dim=1, largest=False).indices  # N E
        mean = torch.stack([candidates[n, elites[n]].mean(dim=0) for n in range(2)])
    torch.testing.assert_close(result.actions, mean)
    torch.testing.assert_close(final[:, 0], mean)  # the plan's own cost is computed for that mean
    again = planner.plan(recording_rollout(), history, goal, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(again.actions, result.actions, rtol=0, atol=0)


def test_bounded_candidates_never_leave_the_box(recording_rollout) -> None:
    """The unbounded optimum (sum of 3 blocks = goal 2.4) lies outside [-0.5, 0.3] per element: every scored
    candidate of every iteration, and the plan, stay inside, and the plan presses against the binding limit."""
    lower, upper = torch.tensor([-0.5, -0.2]), torch.tensor([0.3, 0.1])
    config = CEMConfig(samples=64, elites=8, horizon=3, iterations=8)
    planner = CEMPlanner(config, block_dim=2, bounds=ActionBounds(lower, upper))
    recorder = recording_rollout()
    goal = torch.tensor([[2.4, -1.0], [-3.0, 0.6]])
    result = planner.plan(recorder, torch.zeros(2, 1, 2), goal, generator=torch.Generator().manual_seed(0))
    assert len(recorder.seen) == config.iterations + 1  # every iteration's candidates, then the plan itself
    for candidates in recorder.seen:  # (N*S, H, K), the last one the final plan
        assert (candidates >= lower).all() and (candidates <= upper).all()
    assert (result.actions >= lower).all() and (result.actions <= upper).all()
    # goal above the box in dim 0 for env 0, below in dim 1: the plan sits on those limits
    torch.testing.assert_close(result.actions[0, :, 0], torch.full((3,), 0.3), atol=0.02, rtol=0)
    torch.testing.assert_close(result.actions[0, :, 1], torch.full((3,), -0.2), atol=0.02, rtol=0)
    # the same problem unbounded leaves the box: the bound is what keeps the candidates in
    free = CEMPlanner(config, block_dim=2).plan(recorder, torch.zeros(2, 1, 2), goal,
                                                generator=torch.Generator().manual_seed(0))
    assert ((free.actions < lower) | (free.actions > upper)).any()
    torch.testing.assert_close(free.actions.sum(dim=1), goal, atol=0.1, rtol=0)


def test_bounds_broadcast_per_block_and_reject_an_empty_box() -> None:
    per_block = ActionBounds(torch.tensor([[-1.0], [0.0]]), torch.tensor([[1.0], [0.5]]))  # (H=2, 1) -> (2, 3)
    planner = CEMPlanner(CEMConfig(samples=8, elites=2, horizon=2, iterations=2), block_dim=3, bounds=per_block)
    assert planner.bounds.lower.shape == (2, 3)
    result = planner.plan(lambda h, b, p: b.cumsum(dim=1), torch.zeros(1, 1, 3), torch.full((1, 3), -5.0),
                          generator=torch.Generator().manual_seed(0))
    assert (result.actions[0, 1] >= 0).all() and (result.actions[0, 0] >= -1).all()
    with pytest.raises(ValueError, match="lower limit must be <="):
        CEMPlanner(CEMConfig(), block_dim=2, bounds=ActionBounds(torch.ones(2), torch.zeros(2)))
    with pytest.raises(ValueError, match="must broadcast"):
        CEMPlanner(CEMConfig(), block_dim=2, bounds=ActionBounds(torch.zeros(3), torch.ones(3)))
