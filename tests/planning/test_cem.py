"""CEM plans well when the model is right: with the true Two-Room dynamics it reaches goals far more often than
random actions, on the protocol's kind of start/goal pairs (the state 25 expert steps later)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from einops import rearrange

from lewm.envs.policies import expert_actions, random_actions
from lewm.envs.two_room import is_success, sample_free_positions, step_positions
from lewm.errors import LewmError
from lewm.planning import ActionBounds, CEMConfig, CEMPlanner, PlainRollout
from lewm.planning.cem import final_embedding_cost

FRAMESKIP, SCALE = 5, 100.0


def true_dynamics_rollout(history: torch.Tensor, blocks: torch.Tensor, past: torch.Tensor | None) -> torch.Tensor:
    """A 'world model' that is the environment itself: the embedding is the agent position / SCALE."""
    position = history[:, -1].double().numpy() * SCALE  # B 2
    actions = rearrange(blocks, "b h (f a) -> b h f a", f=FRAMESKIP).double().numpy()
    out = []
    for block in range(actions.shape[1]):
        for sub in range(FRAMESKIP):
            position = step_positions(position, actions[:, block, sub])
        out.append(position / SCALE)
    return torch.from_numpy(np.stack(out, axis=1)).float()  # B H 2


def _pairs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts anywhere; goals where the noisy expert chasing a random target is 25 steps later."""
    rng = np.random.default_rng(seed)
    starts = sample_free_positions(rng, count)
    targets = sample_free_positions(rng, count)
    position = starts.copy()
    for _ in range(25):
        position = step_positions(position, expert_actions(position, targets, rng, noise_std=0.5))
    return starts, position


def _run_mpc(planner: CEMPlanner | None, starts: np.ndarray, goals: np.ndarray, budget: int = 50) -> np.ndarray:
    """Receding horizon on the real dynamics: plan 5 blocks, execute all, replan; random when planner is None."""
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)
    position = starts.copy()
    success = is_success(position, goals)
    goal_emb = torch.from_numpy(goals / SCALE).float()
    steps = 0
    while steps < budget:
        if planner is None:
            actions = np.stack([random_actions(len(starts), rng) for _ in range(25)], axis=1)  # N 25 2
        else:
            history = torch.from_numpy(position / SCALE).float()[:, None]  # N 1 2
            plan = planner.plan(true_dynamics_rollout, history, goal_emb, generator=generator).actions
            actions = rearrange(plan, "n h (f a) -> n (h f) a", f=FRAMESKIP).numpy()
        for step in range(actions.shape[1]):
            position = step_positions(position, np.clip(actions[:, step], -1, 1))
            success |= is_success(position, goals)
            steps += 1
    return success


def test_cem_with_true_dynamics_reaches_goals_far_more_often_than_random() -> None:
    starts, goals = _pairs(40, seed=3)
    crossing = (starts[:, 0] < 112) != (goals[:, 0] < 112)
    assert crossing.sum() >= 5  # the pairs include trips through the door
    box = ActionBounds(-torch.ones(FRAMESKIP * 2), torch.ones(FRAMESKIP * 2))  # the env's box (actions unscaled)
    planner = CEMPlanner(CEMConfig(samples=300, elites=30, horizon=5, iterations=10), block_dim=FRAMESKIP * 2,
                         bounds=box)
    planned = _run_mpc(planner, starts, goals)
    random = _run_mpc(None, starts, goals)
    assert planned.mean() >= 0.85, planned.mean()
    assert planned.mean() - random.mean() >= 0.4, (planned.mean(), random.mean())


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
    mean, std = planner.initial_distribution(2, torch.device("cpu"))
    bounds = planner.bounds.to(torch.device("cpu"))
    noise = torch.randn(2, 16, 2, 3, generator=torch.Generator().manual_seed(0)) * 1e-3  # elites nearly equal
    _, std, _ = planner.iterate(PlainRollout(lambda h, b, p: b.cumsum(dim=1)), {"history": None, "past": None},
                                torch.ones(2, 3), mean, std, noise, bounds)
    assert (std == 0.25).all()


class _Recorder(PlainRollout):
    """A rollout that keeps every candidate it is asked to score (the linear model: running sum of actions)."""

    def __init__(self) -> None:
        super().__init__(lambda history, blocks, past: history[:, -1:] + blocks.cumsum(dim=1))
        self.seen: list[torch.Tensor] = []

    def __call__(self, context: dict, action_blocks: torch.Tensor) -> torch.Tensor:
        self.seen.append(action_blocks.clone())
        return super().__call__(context, action_blocks)


def test_cem_sample_zero_is_the_mean_and_seed_is_reproducible() -> None:
    """Candidate 0 of every environment and iteration is the current mean: zeros at first, then the mean of the
    previous iteration's elites (recomputed here from the candidates the rollout was given); the plan is the last
    mean, and the same generator seed gives the same plan."""
    config = CEMConfig(samples=16, elites=4, horizon=2, iterations=4)
    planner = CEMPlanner(config, block_dim=3)
    recorder = _Recorder()
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
    again = planner.plan(_Recorder(), history, goal, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(again.actions, result.actions, rtol=0, atol=0)


def test_bounded_candidates_never_leave_the_box() -> None:
    """The unbounded optimum (sum of 3 blocks = goal 2.4) lies outside [-0.5, 0.3] per element: every scored
    candidate of every iteration, and the plan, stay inside, and the plan presses against the binding limit."""
    lower, upper = torch.tensor([-0.5, -0.2]), torch.tensor([0.3, 0.1])
    config = CEMConfig(samples=64, elites=8, horizon=3, iterations=8)
    planner = CEMPlanner(config, block_dim=2, bounds=ActionBounds(lower, upper))
    recorder = _Recorder()
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
