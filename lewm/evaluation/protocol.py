"""The paper's planning evaluation (REFERENCE 6), always beside a random policy on the same start/goal pairs.

Protocol: start rows are drawn uniformly (seed 42) among dataset rows that leave room for the goal; the goal is
the state of the same episode `goal_offset` (25) steps later; the agent gets `budget` (50) environment steps;
success is the environment's success test at any step. Planning is receding-horizon MPC: CEM plans H action
blocks, all of them are executed, then it replans from the new observation.

All episodes run in one batch: one CEM call plans for every environment still going.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from einops import rearrange
from scipy.stats import binomtest

from lewm.config import check_field, check_positive_ints
from lewm.data import EpisodeFile, NormStats
from lewm.envs import make
from lewm.errors import LewmError
from lewm.model import FastRollout, LeWM
from lewm.planning import CEMConfig, CEMPlanner, GraphedPlanner
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
    """Seed for drawing start rows, CEM noise and the random policy."""
    split: str = "val"
    """Draw starts from the run's validation episodes ('val') or from every episode ('all')."""
    planner: CEMConfig = field(default_factory=lambda: CEMConfig(iterations=10))
    """CEM settings (paper: 300 x 30 elites, horizon 5; 10 iterations outside Push-T)."""
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


CEM_ITERATIONS = {"pusht": 30}
"""CEM iterations per environment where the paper departs from 10 (30 on Push-T)."""


def default_eval_config(env_name: str) -> EvalConfig:
    """The paper protocol for an environment: 50 pairs, goal 25 steps ahead, budget 50, CEM 300 x 30 elites,
    10 iterations (30 on Push-T)."""
    from lewm.envs.registry import canonical_name

    iterations = CEM_ITERATIONS.get(canonical_name(env_name), 10)
    return EvalConfig(planner=CEMConfig(iterations=iterations))


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


def draw_pairs(data: EpisodeFile, episodes: np.ndarray, count: int, goal_offset: int, seed: int,
               state_key: str = "state") -> Pairs:
    """Draw `count` start rows uniformly among rows with step <= ep_len - goal_offset - 1 (REFERENCE 6)."""
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


def _reset_envs(env_name: str, pairs: Pairs, image_size: int, budget: int) -> tuple[list[Any], np.ndarray]:
    envs, frames = [], []
    for start, goal in zip(pairs.starts, pairs.goals, strict=True):
        env = make(env_name, image_size=image_size, max_episode_steps=budget + 1)
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


def run_random(env_name: str, pairs: Pairs, image_size: int, budget: int, seed: int, videos: int = 0) -> Rollouts:
    """Uniform random actions in the action space for `budget` steps, on the same pairs."""
    envs, first = _reset_envs(env_name, pairs, image_size, budget)
    rng = np.random.default_rng(seed + 1)
    solved = _solved_at_start(envs, pairs)
    success = solved.copy()
    steps = np.where(success, 0, budget)
    recorded = [[first[i]] for i in range(min(videos, len(envs)))]
    for step in range(budget):
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


@torch.inference_mode()
def run_planner(model: LeWM, stats: NormStats, env_name: str, pairs: Pairs, image_size: int, config: EvalConfig,
                device: torch.device, action_key: str = "action") -> Rollouts:
    """Receding-horizon CEM: plan H blocks for every unfinished episode at once, execute them all, replan."""
    frameskip, history = model.config.frameskip, model.config.history
    action_dim = model.config.action_dim
    planner = CEMPlanner(config.planner, block_dim=frameskip * action_dim)
    rollout = model.rollout if config.rollout == "eager" else FastRollout(model)
    graphed = GraphedPlanner(planner, rollout) if config.rollout == "graph" else None
    generator = torch.Generator(device=device).manual_seed(config.seed)
    envs, frames = _reset_envs(env_name, pairs, image_size, config.budget)
    goal_frames = np.stack([env.unwrapped.goal_observation() for env in envs])  # E S S 3
    goal_emb = encode_frames(model, goal_frames, device)  # E D
    emb_history = encode_frames(model, frames, device)[:, None]  # E L=1 D
    block_history = torch.zeros(len(envs), 0, frameskip * action_dim, device=device)  # E L-1 K
    solved = _solved_at_start(envs, pairs)
    success = solved.copy()
    steps_done = np.where(success, 0, config.budget)
    recorded = [[frames[i]] for i in range(min(config.videos, len(envs)))]
    plan_seconds: list[float] = []
    step = 0
    while step < config.budget and not success.all():
        active = np.flatnonzero(~success)
        planned_rows = np.arange(len(envs)) if graphed else active  # a recorded graph keeps its batch size
        observed = min(history, emb_history.shape[1])
        context = emb_history[planned_rows, -observed:]  # A h D
        past = block_history[planned_rows, block_history.shape[1] - (observed - 1):]  # A h-1 K
        start = time.perf_counter()
        if graphed:
            plan = graphed.plan(context, goal_emb, past, generator=generator).actions[active]  # A H K
        else:
            plan = planner.plan(rollout, context, goal_emb[active], past, generator=generator).actions  # A H K
        plan_seconds.append(time.perf_counter() - start)
        raw = rearrange(plan.cpu().numpy(), "a h (f d) -> a h f d", f=frameskip)  # A H frameskip A_dim
        raw = np.asarray(stats.denormalize(action_key, raw))
        blocks = torch.zeros(len(envs), plan.shape[1], plan.shape[2], device=device)
        blocks[active] = plan
        for block in range(plan.shape[1]):
            for sub in range(frameskip):
                if step >= config.budget:
                    break
                for slot, index in enumerate(active):
                    if success[index]:
                        continue
                    env = envs[index]
                    action = np.clip(raw[slot, block, sub], env.action_space.low, env.action_space.high)
                    obs, _, _, _, info = env.step(action.astype(np.float32))
                    frames[index] = obs["pixels"]
                    if index < len(recorded):
                        recorded[index].append(obs["pixels"])
                    if info["success"]:
                        success[index], steps_done[index] = True, step + 1
                step += 1
            emb_history = torch.cat([emb_history, encode_frames(model, frames, device)[:, None]], dim=1)
            block_history = torch.cat([block_history, blocks[:, block : block + 1]], dim=1)
            if step >= config.budget or success.all():
                break
    return Rollouts(success=success, steps_to_success=steps_done, solved_at_start=solved, frames=recorded,
                    goal_frames=list(goal_frames[: len(recorded)]), plan_seconds=plan_seconds,
                    final_states=_final_states(envs))
