"""GraphedPlanner plans exactly as the solver's own plan (CEM, iCEM, MPPI, predictive sampling) from the same
generator (on the CPU the recorded plan runs directly, so this checks everything but the capture itself), and it
reads new inputs on every call."""

from __future__ import annotations

import pytest
import torch

from lewm.planning import ActionBounds, CEMConfig, CEMPlanner, GraphedPlanner, make_solver, planner_config


def _assert_same_plan(got, expected) -> None:
    torch.testing.assert_close(got.actions, expected.actions, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.cost, expected.cost, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.stack(got.cost_per_iteration), torch.stack(expected.cost_per_iteration),
                               atol=1e-6, rtol=0)


def test_graphed_plan_equals_the_plain_plan_and_reads_new_inputs(pull_towards) -> None:
    planner = CEMPlanner(CEMConfig(samples=32, elites=6, horizon=3, iterations=4), block_dim=2)
    graphed = GraphedPlanner(planner, pull_towards)
    inputs = torch.Generator().manual_seed(3)
    for call in range(3):  # the first call records; later ones must read their own inputs, not the first's
        history = torch.randn(4, 1, 2, generator=inputs)
        goal = torch.randn(4, 2, generator=inputs)
        expected = planner.plan(pull_towards, history, goal, generator=torch.Generator().manual_seed(call))
        got = graphed.plan(history, goal, generator=torch.Generator().manual_seed(call))
        _assert_same_plan(got, expected)
    assert len(graphed._recordings) == 1
    # another batch size is another recording, with its own buffers
    history, goal = torch.randn(2, 1, 2, generator=inputs), torch.randn(2, 2, generator=inputs)
    with torch.inference_mode():  # eval plans under inference mode; the buffers stay writable either way
        got = graphed.plan(history, goal, generator=torch.Generator().manual_seed(9))
    _assert_same_plan(got, planner.plan(pull_towards, history, goal, generator=torch.Generator().manual_seed(9)))
    assert len(graphed._recordings) == 2
    assert (got.cost < torch.stack(got.cost_per_iteration)[0] + 1e-6).all()


def test_graphed_plan_with_bounds_equals_the_plain_plan_inside_the_box(pull_towards) -> None:
    bounds = ActionBounds(torch.tensor([-0.3, -1.0]), torch.tensor([0.2, 0.4]))
    planner = CEMPlanner(CEMConfig(samples=32, elites=6, horizon=3, iterations=4), block_dim=2, bounds=bounds)
    graphed = GraphedPlanner(planner, pull_towards)
    inputs = torch.Generator().manual_seed(4)
    for call in range(2):
        history = torch.randn(5, 1, 2, generator=inputs)
        goal = 3 * torch.randn(5, 2, generator=inputs)  # mostly out of reach inside the box
        expected = planner.plan(pull_towards, history, goal, generator=torch.Generator().manual_seed(call))
        got = graphed.plan(history, goal, generator=torch.Generator().manual_seed(call))
        _assert_same_plan(got, expected)
        assert (got.actions >= bounds.lower).all() and (got.actions <= bounds.upper).all()
    # the box binds: the unbounded plan for the same inputs leaves it
    free = CEMPlanner(planner.config, block_dim=2).plan(pull_towards, history, goal,
                                                        generator=torch.Generator().manual_seed(1))
    assert ((free.actions < bounds.lower) | (free.actions > bounds.upper)).any()


@pytest.mark.parametrize("solver", ["icem", "mppi", "ps"])
def test_graphed_plan_of_every_sampling_solver_equals_its_plain_plan_with_a_warm_start(
    solver: str, pull_towards
) -> None:
    extra = {"icem": {"elites": 6, "keep_elites": 3}, "mppi": {"elites": 6}}.get(solver, {})
    planner = make_solver(planner_config(solver, samples=32, horizon=3, iterations=4, **extra), block_dim=2,
                          bounds=ActionBounds(-torch.ones(2), torch.ones(2)))
    graphed = GraphedPlanner(planner, pull_towards)
    inputs = torch.Generator().manual_seed(5)
    for call in range(2):
        history, goal = torch.randn(4, 1, 2, generator=inputs), torch.randn(4, 2, generator=inputs)
        warm = None if call == 0 else 0.5 * torch.randn(4, 2, 2, generator=inputs)  # N h=2 K
        expected = planner.plan(pull_towards, history, goal, generator=torch.Generator().manual_seed(call),
                                init_actions=warm)
        got = graphed.plan(history, goal, generator=torch.Generator().manual_seed(call), init_actions=warm)
        _assert_same_plan(got, expected)


def test_gradient_descent_is_not_recorded(pull_towards) -> None:
    with pytest.raises(ValueError, match="gd plan cannot be recorded"):
        GraphedPlanner(make_solver(planner_config("gd"), block_dim=2), pull_towards)
