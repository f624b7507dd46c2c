"""Every solver plans well when the model is right, and badly when its cost is turned around.

With the true Two-Room dynamics as the "world model" (written here in torch, differentiable for gradient descent,
and checked equal to the environment's own step) each solver reaches goals far more often than random actions on
the protocol's kind of start/goal pairs (the state 25 expert steps later); with the cost negated it does worse
than random. Then what each solver is made of: iCEM's coloured noise, MPPI's weights, gradient descent lowering
its cost, the action box, warm starts and seeds.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from einops import rearrange

from lewm.envs.policies import expert_actions, random_actions
from lewm.envs.two_room import DEFAULT_GEOMETRY as ROOM
from lewm.envs.two_room import is_success, sample_free_positions, step_positions
from lewm.errors import LewmError
from lewm.planning import (
    SOLVER_NAMES,
    ActionBounds,
    GradientPlanner,
    PlainRollout,
    coloured_noise,
    final_embedding_cost,
    make_solver,
    mppi_weights,
    planner_config,
)

FRAMESKIP, SCALE = 5, 100.0


def torch_step(position: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """The Two-Room step (`lewm.envs.two_room.step_positions`) in torch: (B, 2) positions and actions."""
    new = (position + action.clamp(-1, 1) * ROOM.speed).clamp(ROOM.area_low, ROOM.area_high)  # B 2
    low, high = ROOM.door_span
    outside_door = (new[:, 1] < low) | (new[:, 1] > high)
    from_left = position[:, 0] < ROOM.wall_center_x
    new_x = torch.where(from_left & (new[:, 0] > ROOM.face_left) & outside_door, ROOM.stop_left, new[:, 0])
    new_x = torch.where(~from_left & (new_x < ROOM.face_right) & outside_door, ROOM.stop_right, new_x)
    return torch.stack([new_x, new[:, 1]], dim=1)


def true_dynamics(history: torch.Tensor, blocks: torch.Tensor, past: torch.Tensor | None) -> torch.Tensor:
    """A 'world model' that is the environment itself: the embedding is the agent position / SCALE."""
    position = history[:, -1] * SCALE  # B 2
    actions = rearrange(blocks, "b h (f a) -> b h f a", f=FRAMESKIP)
    out = []
    for block in range(actions.shape[1]):
        for sub in range(FRAMESKIP):
            position = torch_step(position, actions[:, block, sub])
        out.append(position / SCALE)
    return torch.stack(out, dim=1)  # B H 2


def test_torch_dynamics_step_as_the_environment() -> None:
    rng = np.random.default_rng(0)
    position = np.concatenate([sample_free_positions(rng, 500), rng.uniform(95, 130, (500, 2))])  # walls, door
    action = rng.uniform(-1.5, 1.5, (1000, 2))
    expected = step_positions(position, action)
    got = torch_step(torch.from_numpy(position).float(), torch.from_numpy(action).float())
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)


def _pairs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts anywhere; goals where the noisy expert chasing a random target is 25 steps later."""
    rng = np.random.default_rng(seed)
    starts = sample_free_positions(rng, count)
    targets = sample_free_positions(rng, count)
    position = starts.copy()
    for _ in range(25):
        position = step_positions(position, expert_actions(position, targets, rng, noise_std=0.5))
    return starts, position


def run_mpc(planner, starts: np.ndarray, goals: np.ndarray, budget: int = 50) -> np.ndarray:
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
            plan = planner.plan(true_dynamics, history, goal_emb, generator=generator).actions
            actions = rearrange(plan, "n h (f a) -> n (h f) a", f=FRAMESKIP).numpy()
        for step in range(actions.shape[1]):
            position = step_positions(position, np.clip(actions[:, step], -1, 1))
            success |= is_success(position, goals)
            steps += 1
    return success


BOX = ActionBounds(-torch.ones(FRAMESKIP * 2), torch.ones(FRAMESKIP * 2))  # the env's box (actions unscaled)
TRUE_DYNAMICS_SETTINGS = {
    "cem": {"iterations": 10}, "icem": {"iterations": 10}, "mppi": {"iterations": 10},
    "ps": {"iterations": 3},  # one round of 300 random sequences is a coarse search on 50-step trips
    "gd": {"samples": 8, "iterations": 30, "lr": 30.0},  # positions / 100: small gradients, so a large step
}


def _inverted(predictions: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    return -final_embedding_cost(predictions, goal)


@pytest.fixture(scope="module")
def room_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts, goals = _pairs(40, seed=3)
    crossing = (starts[:, 0] < 112) != (goals[:, 0] < 112)
    assert crossing.sum() >= 5  # the pairs include trips through the door
    return starts, goals, run_mpc(None, starts, goals)


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_solver_with_true_dynamics_beats_random_and_fails_with_the_inverted_cost(solver: str, room_pairs) -> None:
    starts, goals, random = room_pairs
    config = planner_config(solver, **TRUE_DYNAMICS_SETTINGS[solver])
    planned = run_mpc(make_solver(config, FRAMESKIP * 2, bounds=BOX), starts, goals)
    assert planned.mean() - random.mean() >= 0.4, (solver, planned.mean(), random.mean())
    inverted = run_mpc(make_solver(config, FRAMESKIP * 2, cost=_inverted, bounds=BOX), starts, goals)
    assert inverted.mean() <= random.mean() and inverted.mean() <= planned.mean() - 0.5, (
        solver, inverted.mean(), random.mean(), planned.mean())


def test_coloured_noise_has_the_expected_spectrum() -> None:
    """Power ~ 1/f^beta along the horizon (log-log slope -beta), unit std per sequence, and white for beta 0."""
    white = torch.randn(4000, 64, 2, generator=torch.Generator().manual_seed(0))  # samples, horizon, action
    frequencies = torch.fft.rfftfreq(64)[1:]
    for beta in (1.0, 2.0, 3.0):
        noise = coloured_noise(white, beta, dim=1)
        torch.testing.assert_close(noise.std(dim=1), torch.ones(4000, 2), atol=1e-4, rtol=0)
        power = (torch.fft.rfft(noise, dim=1).abs() ** 2).mean(dim=(0, 2))[1:]  # F-1
        slope = np.polyfit(np.log(frequencies.numpy()), np.log(power.numpy()), 1)[0]
        assert abs(slope + beta) < 0.06 * beta, (beta, slope)  # the per-sequence renormalisation bends it a little
    assert coloured_noise(white, 0.0, dim=1) is white
    # beta 2 puts most of the power in the lowest frequencies: neighbouring steps are strongly correlated
    smooth = coloured_noise(white, 2.0, dim=1)
    correlation = torch.corrcoef(torch.stack([smooth[:, :-1].flatten(), smooth[:, 1:].flatten()]))[0, 1]
    assert correlation > 0.9


def test_mppi_weights_are_a_softmax_of_the_cost_gap() -> None:
    costs = torch.tensor([[3.0, 1.0, 2.0, 1.0], [0.0, 10.0, 0.5, 4.0]])
    weights = mppi_weights(costs, temperature=0.5)
    expected = torch.exp(-(costs - costs.min(dim=1, keepdim=True).values) / 0.5)
    torch.testing.assert_close(weights, expected / expected.sum(dim=1, keepdim=True))
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))
    assert weights[0, 1] == weights[0, 3] and weights[0, 1] > weights[0, 2] > weights[0, 0]
    huge = torch.tensor([[1e6, 1e6 + 1.0]])  # shifting by the minimum keeps large costs finite
    torch.testing.assert_close(mppi_weights(huge, 0.5), torch.softmax(torch.tensor([[0.0, -2.0]]), dim=1))
    assert mppi_weights(costs, 1e-4)[1, 0] > 0.999  # cold: the best elite alone
    torch.testing.assert_close(mppi_weights(costs, 1e6), torch.full((2, 4), 0.25), atol=1e-5, rtol=0)  # hot: mean




def test_mppi_mean_is_the_weighted_mean_of_the_top_k(recording_rollout) -> None:
    config = planner_config("mppi", samples=24, elites=6, horizon=2, iterations=3, temperature=0.3)
    recorder, goal = recording_rollout(), torch.tensor([[1.0, -0.5], [0.3, 2.0]])
    result = make_solver(config, block_dim=2).plan(recorder, torch.zeros(2, 1, 2), goal,
                                                   generator=torch.Generator().manual_seed(2))
    mean = torch.zeros(2, 2, 2)
    for candidates in [rearrange(c, "(n s) h k -> n s h k", n=2) for c in recorder.seen[:-1]]:
        torch.testing.assert_close(candidates[:, 0], mean)  # candidate 0 is the mean
        costs = final_embedding_cost(candidates.cumsum(dim=2), goal)  # N S
        top = costs.topk(6, dim=1, largest=False)
        weights = mppi_weights(top.values, 0.3)
        mean = torch.stack([(weights[n, :, None, None] * candidates[n, top.indices[n]]).sum(0) for n in range(2)])
        std = (candidates[:, 1:] - candidates[:, :1]).std()
        assert abs(std - 1.0) < 0.15  # fixed sampling std: MPPI does not refit it
    torch.testing.assert_close(result.actions, mean)




def test_gradient_descent_lowers_the_cost_it_is_given(pull_towards) -> None:
    goal = torch.tensor([[1.5, -0.8], [-0.4, 0.6], [2.0, 2.0]])
    history = torch.zeros(3, 1, 2)
    config = planner_config("gd", samples=4, horizon=3, iterations=40, lr=0.3)
    planner = make_solver(config, block_dim=2)
    assert isinstance(planner, GradientPlanner)
    start_cost = planner.final_cost(PlainRollout(pull_towards), history, None, goal, torch.zeros(3, 3, 2))
    with torch.inference_mode():  # the evaluation may plan in inference mode; gradients still flow
        result = planner.plan(pull_towards, history, goal, generator=torch.Generator().manual_seed(0))
    trace = torch.stack(result.cost_per_iteration)  # I N
    assert (result.cost < 0.2 * start_cost).all(), (result.cost, start_cost)
    assert (trace[-1] < trace[0]).all() and (trace[1:] <= trace[:-1] + 1e-6).float().mean() > 0.9
    # the returned cost is the returned plan's
    again = planner.final_cost(PlainRollout(pull_towards), history, None, goal, result.actions)
    torch.testing.assert_close(result.cost, again)
    # more steps, lower cost; the reference's learning rate 1 overshoots on this model
    longer = make_solver(dataclasses.replace(config, iterations=80), 2).plan(
        pull_towards, history, goal, generator=torch.Generator().manual_seed(0))
    assert (longer.cost <= result.cost + 1e-6).all()


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_every_candidate_and_the_plan_stay_in_the_box(solver: str, recording_rollout) -> None:
    """The unbounded optimum lies outside [-0.5, 0.3] x [-0.2, 0.1]: nothing scored or returned leaves the box."""
    lower, upper = torch.tensor([-0.5, -0.2]), torch.tensor([0.3, 0.1])
    settings = {"gd": {"samples": 3, "lr": 0.5}}.get(solver, {"samples": 64, "elites": 8} if solver != "ps" else {})
    config = planner_config(solver, horizon=3, iterations=6, **settings)
    recorder, goal = recording_rollout(), torch.tensor([[2.4, -1.0], [-3.0, 0.6]])
    result = make_solver(config, 2, bounds=ActionBounds(lower, upper)).plan(
        recorder, torch.zeros(2, 1, 2), goal, generator=torch.Generator().manual_seed(0))
    for candidates in recorder.seen:
        assert (candidates >= lower).all() and (candidates <= upper).all()
    assert (result.actions >= lower).all() and (result.actions <= upper).all()
    torch.testing.assert_close(result.actions[0, :, 0], torch.full((3,), 0.3), atol=0.05, rtol=0)  # on the limit


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_same_seed_same_plan_and_warm_start_seeds_the_first_candidate(
    solver: str, pull_towards, recording_rollout
) -> None:
    extra = {"gd": {"lr": 0.1}, "icem": {"keep_elites": 2}}.get(solver, {})
    config = planner_config(solver, samples=16 if solver != "gd" else 3, horizon=3, iterations=3,
                            **({"elites": 4} if solver in ("cem", "icem", "mppi") else {}), **extra)
    goal, history = torch.tensor([[1.0, -0.5], [0.3, 0.3]]), torch.zeros(2, 1, 2)
    plans = [make_solver(config, 2).plan(pull_towards, history, goal, generator=torch.Generator().manual_seed(7))
             for _ in range(2)]
    torch.testing.assert_close(plans[0].actions, plans[1].actions, rtol=0, atol=0)
    warm = torch.tensor([[[0.2, -0.1], [0.4, 0.0]], [[-0.3, 0.1], [0.0, 0.5]]])  # N h=2 K: a previous plan's tail
    recorder = recording_rollout()
    make_solver(config, 2).plan(recorder, history, goal, generator=torch.Generator().manual_seed(7),
                                init_actions=warm)
    first = rearrange(recorder.seen[0], "(n s) h k -> n s h k", n=2)[:, 0]  # N H K: candidate 0 (gd: sequence 0)
    torch.testing.assert_close(first, torch.cat([warm, torch.zeros(2, 1, 2)], dim=1))
    with pytest.raises(ValueError, match="init_actions"):
        make_solver(config, 2).plan(recorder, history, goal, init_actions=torch.zeros(2, 4, 2))


def test_solver_settings_are_checked_and_named() -> None:
    with pytest.raises(LewmError, match="planner.solver = 'adam'"):
        planner_config("adam")
    with pytest.raises(LewmError, match="planner.keep_elites = 40"):
        planner_config("icem", keep_elites=40)
    with pytest.raises(LewmError, match="planner.temperature = 0.0"):
        planner_config("mppi", temperature=0.0)
    with pytest.raises(LewmError, match="planner.alpha = 1.0"):
        planner_config("icem", alpha=1.0)
    planner_config("gd", elites=500)  # gd reads no elites: not its to check
    assert planner_config("gd").samples == 1 and planner_config("ps").iterations == 1  # the reference's defaults
    assert planner_config("mppi").settings() == {
        "solver": "mppi", "samples": 300, "horizon": 5, "iterations": 30, "init_std": 1.0, "elites": 30,
        "temperature": 0.5}
    assert planner_config("cem", temperature=0.1).unused_changes() == ["temperature"]
