"""How hard is the Push-T evaluation protocol on a dataset, and what limits it: the data, the protocol or the model?

    python scripts/pusht_difficulty.py --data runs/pusht_expert.h5 [--episodes 50] [--split all|val]
        [--iterations 30] [--samples 300] [--json OUT.json]

On the protocol's start/goal pairs of that dataset (seed 42, goal 25 steps later, budget 50) it reports
(a) the share of 25-step windows of the data in which the block moves, (b) the share of drawn pairs already
solved at the start, (c) random-policy success, (d) oracle success: the protocol's CEM with the TRUE physics as
its model (lewm.evaluation.oracle), a ceiling no learned model can beat, with seconds per planning cycle, and
(e) median final errors (agent, block, angle) of oracle and random. Success rates come with Wilson 95% intervals.
`--split val` draws from the validation episodes a training run with default data settings would hold out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from lewm.config import DataConfig, TrainConfig
from lewm.data import EpisodeFile, held_out_episodes
from lewm.envs.collect import block_moving_fraction, trivial_fraction
from lewm.evaluation import default_eval_config, draw_pairs, median_final_errors, run_random, wilson_interval
from lewm.evaluation.oracle import FRAMESKIP, run_oracle
from lewm.evaluation.protocol import Pairs, Rollouts


def split_of(data: EpisodeFile, split: str) -> np.ndarray:
    """Episode indices pairs are drawn from: all, or the validation episodes of a run with default settings."""
    if split == "all":
        return np.arange(data.num_episodes)
    return held_out_episodes(data.num_episodes, DataConfig().val_fraction, TrainConfig().seed)


def window_shares(data: EpisodeFile, episodes: np.ndarray, offset: int) -> dict[str, float | None]:
    """Shares of `offset`-step windows of the episodes where the block moves, and where the start already
    passes the success test for the end; episodes of equal length are batched, shares weighted by windows."""
    states = np.asarray(data.dataset("state")[:], dtype=np.float64)
    lengths = np.asarray(data.ep_len)[episodes]
    moving = trivial = windows = 0.0
    for length in np.unique(lengths):
        group = episodes[lengths == length]
        if length <= offset:
            continue
        stacked = np.stack([states[data.ep_offset[e]: data.ep_offset[e] + length] for e in group])  # E T 7
        count = len(group) * (length - offset)
        moving += block_moving_fraction(stacked, offset) * count
        trivial += trivial_fraction(stacked, offset) * count
        windows += count
    if windows == 0:
        return {"block_moving_windows": None, "trivial_windows": None}
    return {"block_moving_windows": moving / windows, "trivial_windows": trivial / windows}


def summary(rollouts: Rollouts, pairs: Pairs) -> dict[str, Any]:
    """Success rate with its 95% Wilson interval and median final errors (agent, block position, block angle)."""
    final, goals = rollouts.final_states, pairs.goals
    successes, total = int(rollouts.success.sum()), len(rollouts.success)
    return {
        "success_rate": successes / total,
        "ci95": list(wilson_interval(successes, total)),
        "median_final_errors": median_final_errors("pusht", final, goals),
    }


def print_table(result: dict[str, Any]) -> None:
    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    print(f"\n{result['data']} ({result['split']}, {result['pairs']} pairs, CEM {result['samples']} x "
          f"{result['iterations']} iterations)")
    print(f"  25-step windows where the block moves: {share(result['block_moving_windows'])}; "
          f"start already solves end: {share(result['trivial_windows'])}")
    print(f"  trivial pairs among the drawn pairs:   {share(result['trivial_pairs'])}")
    print(f"  {'policy':<8} {'success':>8} {'95% CI':>16} {'agent err':>10} {'block err':>10} {'angle err':>10}")
    for name in ("oracle", "random"):
        row = result[name]
        low, high = row["ci95"]
        errors = row["median_final_errors"]
        print(f"  {name:<8} {share(row['success_rate']):>8} {f'[{100 * low:.0f}, {100 * high:.0f}]%':>16} "
              f"{errors['agent']:>10.1f} {errors['block']:>10.1f} {errors['angle_deg']:>9.1f}d")
    print(f"  oracle planning: {result['oracle']['seconds_per_cycle']:.1f} s per cycle "
          f"({result['oracle']['seconds_per_episode_plan']:.2f} s per episode plan), {result['seconds']:.0f} s total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--episodes", type=int, default=50, help="start/goal pairs (protocol: 50)")
    parser.add_argument("--split", choices=("all", "val"), default="all")
    parser.add_argument("--iterations", type=int, default=None, help="CEM iterations (protocol: 30 on Push-T)")
    parser.add_argument("--samples", type=int, default=None, help="CEM samples (protocol: 300)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args()
    config = default_eval_config("pusht")
    config.episodes = args.episodes
    config.planner.iterations = args.iterations or config.planner.iterations
    config.planner.samples = args.samples or config.planner.samples
    config.planner.elites = min(config.planner.elites, config.planner.samples)
    config.validate()
    start = time.perf_counter()
    with EpisodeFile(args.data) as data:
        episodes = split_of(data, args.split)
        pairs = draw_pairs(data, episodes, config.episodes, config.goal_offset, config.seed)
        windows = window_shares(data, episodes, config.goal_offset)
    oracle = run_oracle(pairs, config.planner, config.budget, config.seed, show_progress=True)
    random = run_random("pusht", pairs, 32, config.budget, config.seed)
    cycles = np.asarray(oracle.plan_seconds)
    result = {
        "data": str(args.data), "split": args.split, "pairs": len(pairs.rows), "samples": config.planner.samples,
        "elites": config.planner.elites, "iterations": config.planner.iterations, "horizon": config.planner.horizon,
        "budget": config.budget, "goal_offset": config.goal_offset, **windows,
        "trivial_pairs": float(oracle.solved_at_start.mean()),
        "oracle": {**summary(oracle, pairs), "seconds_per_cycle": float(cycles.mean()),
                   "seconds_per_episode_plan": _per_episode_plan(oracle, config.planner.horizon * FRAMESKIP),
                   "cycles": len(cycles)},
        "random": summary(random, pairs),
    }
    result["seconds"] = time.perf_counter() - start
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


def _per_episode_plan(rollouts: Rollouts, steps_per_cycle: int) -> float:
    """Seconds of planning per episode and cycle: cycle c starts at step c * steps_per_cycle and plans the
    episodes not yet solved then, fewer as more succeed."""
    planned = sum(int((rollouts.steps_to_success > cycle * steps_per_cycle).sum())
                  for cycle in range(len(rollouts.plan_seconds)))
    return float(np.sum(rollouts.plan_seconds) / max(planned, 1))


if __name__ == "__main__":
    main()
