"""The paper's planning evaluation (docs/reference.md section 6), always beside a random policy on the same start/goal
pairs.

Protocol: start rows are drawn uniformly (seed 42) among dataset rows that leave room for the goal; the goal is
the state of the same episode `goal_offset` (25) steps later; the agent gets `budget` (50) environment steps;
success is the environment's success test at any step. Planning is receding-horizon MPC: a solver (CEM in the
paper; iCEM, MPPI, gradient descent or predictive sampling here too) plans H action blocks, the first R of them
(all of them in the paper) are executed, then it replans from the new observation, the unexecuted tail of the
last plan seeding the next one (warm start).

All episodes run in one batch: one solver call plans for every environment still going.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat
from scipy.stats import binomtest
from tqdm import tqdm

from lewm.config import check_field, check_positive_ints
from lewm.data import EpisodeFile, NormStats
from lewm.envs import make
from lewm.envs.pusht import wrap_angle
from lewm.envs.registry import canonical_name
from lewm.errors import LewmError
from lewm.model import FastRollout, LeWM
from lewm.planning import (
    SOLVER_OPTIONS,
    ActionBounds,
    GraphedPlanner,
    PlannerConfig,
    as_runner,
    make_solver,
    planner_config,
    solver_defaults,
)
from lewm.runs import encode_frames


@dataclass
class EvalConfig:
    """How an evaluation is run."""

    episodes: int = 50
    """Start/goal pairs evaluated (paper: 50)."""
    goal_offset: int = 25
    """The goal is the state this many steps later in the same episode (paper v3: 25)."""
    budget: int = 50
    """Environment steps allowed per episode (paper v3: 50)."""
    seed: int = 42
    """Seed for drawing start rows, the solver's noise and the random policy."""
    split: str = "val"
    """Draw starts from the run's validation episodes ('val') or from every episode ('all')."""
    planner: PlannerConfig = field(default_factory=lambda: PlannerConfig(iterations=10))
    """Solver and its settings (paper: CEM 300 x 30 elites, horizon 5; 10 iterations outside Push-T)."""
    receding_horizon: int | None = None
    """R: planned blocks executed before replanning (default: all H, as in the paper); the other H - R seed the
    next plan."""
    videos: int = 4
    """Episodes recorded to the GIF."""
    rollout: str = "fast"
    """'fast' (lewm.model.FastRollout: the same predictions with less work), 'eager' (LeWM.rollout as is) or
    'graph' (FastRollout with each whole plan replayed as one CUDA graph, lewm.planning.GraphedPlanner; a graph
    keeps its shapes, so every episode is planned each cycle, finished ones too; on the CPU nothing is
    captured and it only adds that work)."""

    def validate(self) -> None:
        check_positive_ints(self, ("episodes", "goal_offset", "budget"), prefix="", where="eval")
        check_field(self.split in ("val", "all"), "split", self.split, "use 'val' or 'all'", where="eval")
        check_field(self.rollout in ("fast", "eager", "graph"), "rollout", self.rollout,
                    "use 'fast', 'eager' or 'graph'", where="eval")
        self.planner.validate("planner")
        for name in self.planner.unused_changes():  # a flag meant for another solver
            check_field(False, name, getattr(self.planner, name), f"solver {self.planner.solver!r} does not read it "
                        f"(it reads {', '.join(SOLVER_OPTIONS[self.planner.solver])})", where="eval")
        check_field(self.receding_horizon is None or 1 <= self.receding_horizon <= self.planner.horizon,
                    "receding_horizon", self.receding_horizon, f"must be in 1..horizon {self.planner.horizon}",
                    where="eval")
        check_field(self.rollout != "graph" or self.planner.solver != "gd", "rollout", self.rollout,
                    "gradient descent needs autograd, which a recorded CUDA graph does not replay: use 'fast'",
                    where="eval")

    @property
    def receding_blocks(self) -> int:
        """R: blocks executed per plan."""
        return self.receding_horizon or self.planner.horizon


CEM_ITERATIONS = {"pusht": 30}
"""CEM iterations per environment where the paper departs from 10 (30 on Push-T)."""


def default_planner(env_name: str, solver: str = "cem") -> PlannerConfig:
    """The paper's planner budget for an environment: 300 samples, horizon 5, 10 rounds (30 on Push-T), which
    every iterative solver (cem, icem, mppi; gd's gradient steps) gets; the rest are the solver's reference
    defaults (gd: 1 sample; ps: 1 round)."""
    iterations = CEM_ITERATIONS.get(canonical_name(env_name), 10)
    # the protocol's rounds, unless the solver's reference default fixes them (predictive sampling: 1 round)
    rounds = {} if "iterations" in solver_defaults(solver) else {"iterations": iterations}
    return planner_config(solver, **rounds)


def default_eval_config(env_name: str, episodes: int = EvalConfig.episodes, solver: str = "cem") -> EvalConfig:
    """The paper protocol for an environment: goal 25 steps ahead, budget 50, CEM 300 x 30 elites, 10 iterations
    (30 on Push-T), on `episodes` start/goal pairs (paper: 50; the demo, the report and lambda search use fewer
    on a CPU, and only that may differ from the paper); another `solver` gets the same budget
    (`default_planner`)."""
    return EvalConfig(episodes=episodes, planner=default_planner(env_name, solver))


@dataclass
class Pairs:
    """Start and goal states drawn from a dataset."""

    starts: np.ndarray
    """(E, S) start states."""
    goals: np.ndarray
    """(E, S) goal states, goal_offset steps later in the same episode."""
    rows: np.ndarray
    """(E,) dataset rows of the starts."""


@dataclass
class Rollouts:
    """What a policy did on a batch of start/goal pairs."""

    success: np.ndarray
    """(E,) bool: the success test held at some step."""
    steps_to_success: np.ndarray
    """(E,) steps taken until success (budget when never)."""
    solved_at_start: np.ndarray
    """(E,) bool: the start already passes the success test (a trivial pair)."""
    frames: list[list[np.ndarray]]
    """Observed frames of the first few episodes (for videos)."""
    goal_frames: list[np.ndarray] = field(default_factory=list)
    """Goal frames of the recorded episodes."""
    plan_seconds: list[float] = field(default_factory=list)
    """Wall time of each batched planning call."""
    final_states: np.ndarray | None = None
    """(E, S) states at the end of each episode (at success, or when the budget ran out)."""
    clipped_action_share: float = 0.0
    """Share of executed actions that the policy put outside the action box (clipped before execution)."""


def draw_pairs(data: EpisodeFile, episodes: np.ndarray, count: int, goal_offset: int, seed: int,
               state_key: str = "state") -> Pairs:
    """Draw `count` start rows uniformly among rows with step <= ep_len - goal_offset - 1
    (docs/reference.md section 6)."""
    if state_key not in data.columns:
        raise LewmError(f"{data.path}: no {state_key!r} column: evaluation needs states to reset the environment")
    candidates = np.concatenate([
        data.ep_offset[e] + np.arange(max(0, data.ep_len[e] - goal_offset)) for e in episodes
    ]) if len(episodes) else np.zeros(0, dtype=np.int64)
    if len(candidates) == 0:
        raise LewmError(f"{data.path}: no episode is longer than the goal offset {goal_offset}")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(candidates, size=count, replace=len(candidates) < count))
    states = data.dataset(state_key)
    starts = np.stack([states[r] for r in rows]).astype(np.float64)
    goals = np.stack([states[r + goal_offset] for r in rows]).astype(np.float64)
    return Pairs(starts=starts, goals=goals, rows=rows)


def wilson_interval(successes: int, total: int) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    interval = binomtest(successes, total).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)


def median_final_errors(env_name: str, states: np.ndarray, goals: np.ndarray) -> dict[str, float]:
    """Median distance to the goal of (E, S) states: Two-Room agent (px); Push-T agent and block (world units)
    and wrapped block angle (degrees); Reacher the worst joint (degrees, plain difference as its success test);
    Cube the cube (m). Says what a failed policy got wrong, where a success rate cannot."""
    states, goals = np.asarray(states, dtype=np.float64), np.asarray(goals, dtype=np.float64)
    env = canonical_name(env_name)
    if env == "reacher":
        errors = {"joint_deg": np.degrees(np.abs(states[:, :2] - goals[:, :2]).max(axis=1))}  # E
    elif env == "cube":
        from lewm.envs.cube import CUBE_QPOS

        errors = {"cube": np.linalg.norm(states[:, CUBE_QPOS] - goals[:, CUBE_QPOS], axis=1)}  # E
    else:
        errors = {"agent": np.linalg.norm(states[:, :2] - goals[:, :2], axis=1)}  # E
    if env == "pusht":
        errors["block"] = np.linalg.norm(states[:, 2:4] - goals[:, 2:4], axis=1)  # E
        errors["angle_deg"] = np.degrees(np.abs(wrap_angle(states[:, 4] - goals[:, 4])))  # E
    return {name: float(np.median(values)) for name, values in errors.items()}


def reset_envs(env_name: str, pairs: Pairs, image_size: int, budget: int, env_options: dict[str, Any] | None = None
               ) -> tuple[list[Any], np.ndarray]:
    """One environment per pair, reset to its start and goal states -> (envs, (E, S, S, 3) first observations).

    Every policy starts from these, so planners and the random policy are compared on the same episodes.
    `env_options` are further constructor options that make the frames look like the data's (Cube's shadows:
    `lewm.envs.collect.recorded_env_options`)."""
    envs, frames = [], []
    for start, goal in zip(pairs.starts, pairs.goals, strict=True):
        env = make(env_name, image_size=image_size, max_episode_steps=budget + 1, **(env_options or {}))
        obs, _ = env.reset(options={"state": start, "goal_state": goal})
        envs.append(env)
        frames.append(obs["pixels"])
    return envs, np.stack(frames)  # E S S 3


def _solved_at_start(envs: list[Any], pairs: Pairs) -> np.ndarray:
    """(E,) bool: pairs whose start already passes the environment's success test."""
    return np.array([env.unwrapped.is_success(start, goal)
                     for env, start, goal in zip(envs, pairs.starts, pairs.goals, strict=True)])


def _final_states(envs: list[Any]) -> np.ndarray:
    return np.stack([env.unwrapped.get_state() for env in envs]).astype(np.float64)  # E S


def run_random(env_name: str, pairs: Pairs, image_size: int, budget: int, seed: int, videos: int = 0,
               progress: bool = False, env_options: dict[str, Any] | None = None) -> Rollouts:
    """Uniform random actions in the action space for `budget` steps, on the same pairs (`progress`: a bar of
    environment steps on stderr; `env_options` as `reset_envs`)."""
    envs, first = reset_envs(env_name, pairs, image_size, budget, env_options)
    rng = np.random.default_rng(seed + 1)
    solved = _solved_at_start(envs, pairs)
    success = solved.copy()
    steps = np.where(success, 0, budget)
    recorded = [[first[i]] for i in range(min(videos, len(envs)))]
    for step in tqdm(range(budget), desc="eval random", unit="step", dynamic_ncols=True, disable=not progress):
        for index, env in enumerate(envs):
            if success[index]:
                continue
            low, high = env.action_space.low, env.action_space.high
            obs, _, _, _, info = env.step(rng.uniform(low, high).astype(np.float32))
            if index < len(recorded):
                recorded[index].append(obs["pixels"])
            if info["success"]:
                success[index], steps[index] = True, step + 1
    return Rollouts(success=success, steps_to_success=steps, solved_at_start=solved, frames=recorded,
                    final_states=_final_states(envs))


def normalised_action_bounds(low: np.ndarray, high: np.ndarray, stats: NormStats, action_key: str,
                             frameskip: int) -> ActionBounds:
    """The environment's action box [low, high] (A,) in the units CEM samples: z-scored with the run's statistics
    ((bound - mean) / std per action dimension) and tiled over the frameskip actions of a block, (K,) each.

    CEM samples in normalised units without knowing the box; bounding it there keeps every candidate the model
    scores equal to what the environment executes (no clipping after planning)."""
    lower = stats.normalize(action_key, np.asarray(low, dtype=np.float64))  # A
    upper = stats.normalize(action_key, np.asarray(high, dtype=np.float64))  # A
    return ActionBounds(lower=torch.from_numpy(repeat(lower, "a -> (f a)", f=frameskip)).float(),  # K
                        upper=torch.from_numpy(repeat(upper, "a -> (f a)", f=frameskip)).float())  # K


def executed_blocks(executed: np.ndarray, stats: NormStats, action_key: str) -> torch.Tensor:
    """(N, H, frameskip, A) raw actions the environments executed -> (N, H, K) normalised blocks.

    The model's action history must hold what ran (after clipping to the action box), not the plan, or it
    predicts the next frames from actions the environment never saw."""
    normalised = stats.normalize(action_key, np.asarray(executed, dtype=np.float32))  # N H frameskip A
    return torch.from_numpy(rearrange(normalised, "n h f a -> n h (f a)"))  # N H K


def outside_box(actions: np.ndarray, low: np.ndarray, high: np.ndarray, rtol: float = 1e-5) -> np.ndarray:
    """(..., A) raw actions -> (...,) bool: some element lies outside [low, high] by more than float rounding.

    Bounds round-tripped through normalisation in float32 can land one ulp outside the box; that is not an
    action the environment had to change, so a relative tolerance absorbs it."""
    slack = rtol * np.maximum(1.0, np.abs(high - low))
    return ((actions < low - slack) | (actions > high + slack)).any(axis=-1)


@dataclass
class _LoopState:
    """What the receding-horizon loop tracks per episode, updated as environment steps run."""

    frames: np.ndarray
    """(E, S, S, 3) the latest observation of every environment."""
    success: np.ndarray
    """(E,) bool: the success test held at some step."""
    steps_done: np.ndarray
    """(E,) steps taken until success (budget when never)."""
    recorded: list[list[np.ndarray]]
    """Observed frames of the first few episodes (for videos)."""
    step: int = 0
    """Environment steps run so far (the same for every unfinished episode)."""
    executed_actions: int = 0
    """Actions sent to an environment."""
    clipped_actions: int = 0
    """Of those, actions the plan put outside the action box (clipped before execution)."""


def _execute_block(envs: list[Any], state: _LoopState, active: np.ndarray, planned: np.ndarray,
                   executed: np.ndarray, budget: int) -> None:
    """Run one block (frameskip steps) in every active, unfinished environment.

    planned (A, frameskip, A_dim) the de-normalised plan; executed (A, frameskip, A_dim) the same clipped to the
    action box, which is what the environments receive."""
    for sub in range(executed.shape[1]):
        if state.step >= budget:
            return
        for slot, index in enumerate(active):
            if state.success[index]:
                continue
            env = envs[index]
            state.executed_actions += 1
            state.clipped_actions += int(outside_box(planned[slot, sub], env.action_space.low,
                                                        env.action_space.high))
            obs, _, _, _, info = env.step(executed[slot, sub])
            state.frames[index] = obs["pixels"]
            if index < len(state.recorded):
                state.recorded[index].append(obs["pixels"])
            if info["success"]:
                state.success[index], state.steps_done[index] = True, state.step + 1
        state.step += 1


PlanFn = Callable[[np.ndarray, int], np.ndarray]
"""plan(active (A,) environment indices, environment steps run so far) -> (A, H, frameskip, A_dim) raw actions:
de-normalised, not yet clipped to the action box."""
AfterBlock = Callable[[np.ndarray, np.ndarray, np.ndarray], None]
"""after_block(active (A,), executed (A, frameskip, A_dim) actions the environments received, frames (E, S, S, 3)
the latest observation of every environment), called after each executed block."""


def receding_horizon(envs: list[Any], pairs: Pairs, frames: np.ndarray, budget: int, plan: PlanFn,
                     after_block: AfterBlock | None = None, videos: int = 0) -> Rollouts:
    """Receding-horizon MPC on reset environments (`reset_envs`, whose (E, S, S, 3) first observations are
    `frames`): plan H blocks for every unfinished episode at once, execute them all, replan; success at any step.

    Planners differ only in `plan`; sharing the rest (success bookkeeping, stop conditions, clipping to the
    action box, counting clipped actions) keeps their numbers comparable. `plan_seconds` times each `plan` call.
    `after_block` lets a planner with a memory (the model's history) record what ran before the next block."""
    low, high = envs[0].action_space.low, envs[0].action_space.high  # A_dim each, one environment kind
    solved = _solved_at_start(envs, pairs)
    # copies: state.frames is overwritten in place as environments step
    state = _LoopState(frames=frames, success=solved.copy(), steps_done=np.where(solved, 0, budget),
                      recorded=[[frames[i].copy()] for i in range(min(videos, len(envs)))])
    plan_seconds: list[float] = []
    while state.step < budget and not state.success.all():
        active = np.flatnonzero(~state.success)  # A
        start = time.perf_counter()
        raw = np.asarray(plan(active, state.step))  # A H frameskip A_dim
        plan_seconds.append(time.perf_counter() - start)
        executed = np.clip(raw, low, high).astype(np.float32)  # A H frameskip A_dim: what the envs receive
        for block in range(raw.shape[1]):
            _execute_block(envs, state, active, raw[:, block], executed[:, block], budget)
            if after_block is not None:
                after_block(active, executed[:, block], state.frames)
            if state.step >= budget or state.success.all():
                break
    return Rollouts(success=state.success, steps_to_success=state.steps_done, solved_at_start=solved,
                    frames=state.recorded, plan_seconds=plan_seconds, final_states=_final_states(envs),
                    clipped_action_share=state.clipped_actions / max(state.executed_actions, 1))


class _CountedRollout:
    """A solver's rollout (`prepare` + call, as `lewm.planning.PlainRollout`) that calls `tick` after each call:
    once per round and once for the plan's final cost (gd: its final ranking), which is what a bar counts."""

    def __init__(self, rollout: Any, tick: Callable[[], Any]) -> None:
        self.runner = as_runner(rollout)
        self.tick = tick

    def prepare(self, *args: Any) -> Any:
        return self.runner.prepare(*args)

    def __call__(self, context: Any, action_blocks: torch.Tensor) -> torch.Tensor:
        predictions = self.runner(context, action_blocks)
        self.tick()
        return predictions


def _planning_bar(config: EvalConfig, frameskip: int, progress: bool) -> tqdm:
    """A bar of solver rounds (each plan: `iterations` + 1 rollouts) over the most planning cycles the budget
    allows (every cycle executes R blocks); it stops short when every episode succeeds early."""
    cycles = -(-config.budget // (config.receding_blocks * frameskip))
    return tqdm(total=cycles * (config.planner.iterations + 1), desc=f"eval plan ({config.planner.solver})",
                unit="it", dynamic_ncols=True, disable=not progress)


@torch.no_grad()  # not inference mode: gradient descent differentiates the rollout (FastRollout's folded weights)
def run_planner(model: LeWM, stats: NormStats, env_name: str, pairs: Pairs, image_size: int, config: EvalConfig,
                device: torch.device, action_key: str = "action", progress: bool = False,
                env_options: dict[str, Any] | None = None) -> Rollouts:
    """Receding-horizon MPC (`receding_horizon`) with the model: plan H blocks for every unfinished episode at
    once from its encoded history, execute the first R, replan with the other H - R as the warm start.

    The solver plans inside the environment's action box (in normalised units), and the history the model is
    conditioned on holds the executed actions, normalised again. `progress`: a bar of solver rounds on stderr,
    with the environment step and the episodes solved so far; `env_options` as `reset_envs`."""
    frameskip, history = model.config.frameskip, model.config.history
    block_dim, kept = frameskip * model.config.action_dim, config.receding_blocks  # K, R
    envs, frames = reset_envs(env_name, pairs, image_size, config.budget, env_options)
    low, high = envs[0].action_space.low, envs[0].action_space.high  # A_dim each, one environment kind
    planner = make_solver(config.planner, block_dim, bounds=normalised_action_bounds(low, high, stats, action_key,
                                                                                      frameskip))
    bar = _planning_bar(config, frameskip, progress)
    rollout = model.rollout if config.rollout == "eager" else FastRollout(model)
    graphed = GraphedPlanner(planner, rollout) if config.rollout == "graph" else None  # replayed: not counted
    counted = _CountedRollout(rollout, bar.update)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    goal_frames = np.stack([env.unwrapped.goal_observation() for env in envs])  # E S S 3
    goal_emb = encode_frames(model, goal_frames, device)  # E D
    emb_history = encode_frames(model, frames, device)[:, None]  # E L=1 D
    block_history = torch.zeros(len(envs), 0, block_dim, device=device)  # E L-1 K
    tail = torch.zeros(len(envs), config.planner.horizon - kept, block_dim, device=device)  # E H-R K

    def plan(active: np.ndarray, step: int) -> np.ndarray:
        bar.set_postfix_str(f"step {step}/{config.budget}, solved {len(envs) - len(active)}/{len(envs)}")
        rows = np.arange(len(envs)) if graphed else active  # a recorded graph keeps its batch size
        observed = min(history, emb_history.shape[1])
        context = emb_history[rows, -observed:]  # A h D (E h D when graphed)
        past = block_history[rows, block_history.shape[1] - (observed - 1):]  # A h-1 K
        warm = tail[rows] if tail.shape[1] else None  # A H-R K: the last plan's unexecuted blocks
        if graphed:
            actions = graphed.plan(context, goal_emb, past, generator, warm).actions[active]  # A H K
            bar.update(config.planner.iterations + 1)
        else:
            actions = planner.plan(counted, context, goal_emb[active], past, generator, warm).actions  # A H K
        tail[active] = actions[:, kept:]
        raw = rearrange(actions[:, :kept].cpu().numpy(), "a r (f d) -> a r f d", f=frameskip)
        return np.asarray(stats.denormalize(action_key, raw))  # A R frameskip A_dim

    def after_block(active: np.ndarray, executed: np.ndarray, latest: np.ndarray) -> None:
        nonlocal emb_history, block_history
        blocks = torch.zeros(len(envs), 1, block_dim, device=device)  # E 1 K, zero for finished episodes
        blocks[active] = executed_blocks(executed[:, None], stats, action_key).to(device)  # A 1 K
        emb_history = torch.cat([emb_history, encode_frames(model, latest, device)[:, None]], dim=1)  # E L+1 D
        block_history = torch.cat([block_history, blocks], dim=1)  # E L K

    with bar:
        rollouts = receding_horizon(envs, pairs, frames, config.budget, plan, after_block, config.videos)
        bar.set_postfix_str(f"{len(rollouts.plan_seconds)} cycles, solved {rollouts.success.sum()}/{len(envs)}")
    rollouts.goal_frames = list(goal_frames[: len(rollouts.frames)])
    return rollouts
