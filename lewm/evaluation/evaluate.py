"""`evaluate(run_dir, env)`: the paper protocol with a random baseline, written to RUN_DIR/eval/.

    eval/eval.json      success_rate, ci95, random_success_rate, random_ci95, episodes, plan_seconds_per_cycle,
                        trivial_pairs, clipped_action_share (executed actions the plan put outside the action
                        box; 0 while the solver plans inside it), protocol (what was run), per-episode results
    eval/success.png    success rates with 95% intervals, and where each episode's agent went
    eval/episodes.gif   a few planned episodes: observation | goal | trail of the agent so far (goal faint), at
                        10 frames per second with a pause on each episode's last frame

eval.json's protocol.split says where the start/goal pairs came from: 'val' (the run's validation episodes),
'all', or 'train (no validation episodes)' when a 'val' evaluation found none (val_fraction 0, one episode).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lewm.data import EpisodeFile, held_out_episodes
from lewm.data.hdf5 import file_attributes
from lewm.envs import make
from lewm.envs.collect import recorded_env_options
from lewm.errors import LewmError
from lewm.evaluation.protocol import (
    EvalConfig,
    Pairs,
    Rollouts,
    default_eval_config,
    draw_pairs,
    median_final_errors,
    run_planner,
    run_random,
    wilson_interval,
)
from lewm.runs import LoadedRun, as_run, run_data_path
from lewm.utils.device import resolve_device
from lewm.utils.io import atomic_write_text
from lewm.utils.plotting import pyplot

FPS = 10
"""Frames per second of episodes.gif."""
PAUSE_FRAMES = 6
"""How long (in frames) the GIF holds each episode's last frame."""


def start_episodes(num_episodes: int, split: str, val_fraction: float, seed: int) -> tuple[np.ndarray, str]:
    """The episodes start/goal pairs are drawn from and the split that was actually used: with split 'val', the
    run's validation episodes, or its training episodes when it has none ('train (no validation episodes)')."""
    if split == "all":
        return np.arange(num_episodes), "all"
    episodes = held_out_episodes(num_episodes, val_fraction, seed)
    # a validation split always leaves a training episode, so only the fallback holds every episode
    return episodes, ("val" if len(episodes) < num_episodes else "train (no validation episodes)")


@dataclass
class EvalSetup:
    """What every policy evaluated on a run shares: its start/goal pairs and how to render them."""

    pairs: Pairs
    data_path: Path
    """The episode file the pairs were drawn from."""
    image_size: int
    env_options: dict[str, Any]
    """Environment options the data were recorded with (Cube's shadows)."""
    split: str
    """Where the start episodes came from (`start_episodes`)."""
    start_episodes: int
    """How many episodes the starts were drawn among."""


def eval_setup(run: LoadedRun, config: EvalConfig, data_path: Path | None = None) -> EvalSetup:
    """Draw the protocol's start/goal pairs for a loaded run (its training file's validation episodes unless
    `data_path` or `config.split` say otherwise); the same pairs for the same config, whatever the policy."""
    data_path = run_data_path(run, data_path)
    with EpisodeFile(data_path, pixels_key=run.config.data.pixels_key,
                     action_key=run.config.data.action_key) as data:
        if data.action_dim != run.config.model.action_dim:
            raise LewmError(f"{data_path}: column {run.config.data.action_key!r} has {data.action_dim} dimensions "
                            f"but the model in {run.run_dir} was trained with action_dim {run.config.model.action_dim}")
        episodes, split = start_episodes(data.num_episodes, config.split, run.config.data.val_fraction,
                                         run.config.seed)
        pairs = draw_pairs(data, episodes, config.episodes, config.goal_offset, config.seed)
        image_size = data.image_shape[0]
    env_options = recorded_env_options(file_attributes(data_path))  # render as the data were (Cube's shadows)
    return EvalSetup(pairs, data_path, image_size, env_options, split, len(episodes))


def evaluate(run_dir: Path | LoadedRun, env_name: str, data_path: Path | None = None,
             config: EvalConfig | None = None, device: str = "auto", out_dir: Path | None = None,
             checkpoint: str = "last.pt", progress: bool = True) -> dict[str, Any]:
    """Evaluate a trained run (its directory, or a `LoadedRun`) on `env_name`; returns (and writes) the eval.json
    dictionary. `progress`: bars for the planner and the random baseline on stderr."""
    make(env_name)  # an unknown environment fails here, before any model is loaded
    config = config or default_eval_config(env_name)
    config.validate()
    torch_device = resolve_device(device)
    run = as_run(run_dir, torch_device, checkpoint=checkpoint)
    run_dir = run.run_dir
    out_dir = Path(out_dir or Path(run_dir) / "eval")
    setup = eval_setup(run, config, data_path)
    pairs, data_path, env_options = setup.pairs, setup.data_path, setup.env_options
    planned = run_planner(run.model, run.stats, env_name, pairs, setup.image_size, config, torch_device,
                          action_key=run.config.data.action_key, progress=progress, env_options=env_options)
    random = run_random(env_name, pairs, setup.image_size, config.budget, config.seed, videos=0, progress=progress,
                        env_options=env_options)

    trivial = planned.solved_at_start
    count = len(pairs.rows)
    result = {
        "success_rate": float(planned.success.mean()),
        "ci95": list(wilson_interval(int(planned.success.sum()), count)),
        "random_success_rate": float(random.success.mean()),
        "random_ci95": list(wilson_interval(int(random.success.sum()), count)),
        "episodes": count,
        "plan_seconds_per_cycle": float(np.mean(planned.plan_seconds)) if planned.plan_seconds else 0.0,
        "plan_cycles": len(planned.plan_seconds),
        "clipped_action_share": planned.clipped_action_share,
        "trivial_pairs": float(trivial.mean()),
        "nontrivial_success_rate": float(planned.success[~trivial].mean()) if (~trivial).any() else None,
        "nontrivial_random_success_rate": float(random.success[~trivial].mean()) if (~trivial).any() else None,
        "median_final_errors": {name: median_final_errors(env_name, states, pairs.goals) for name, states in
                                (("start", pairs.starts), ("planned", planned.final_states),
                                 ("random", random.final_states))},
        "protocol": {
            "env": env_name, "data": str(data_path), "run": str(run_dir), "checkpoint": checkpoint,
            "checkpoint_step": run.step, "env_options": env_options,
            "split": setup.split, "start_episodes": setup.start_episodes, "goal_offset": config.goal_offset,
            "budget": config.budget,
            "seed": config.seed, "solver": config.planner.solver, "planner": config.planner.settings(),
            "rollout": config.rollout,
            "receding_horizon": config.receding_blocks,
            "receding_horizon_note": "planned blocks executed before replanning; the unexecuted rest seeds the "
                                     "next plan (warm start)",
            "action_bounds": "candidates clamped to the action box (normalised units) before the rollout (gd: "
                             "projected after every step); the model's action history holds the executed actions",
            "plan_seconds_note": "one batched solver call planning every unfinished episode at once",
            "device": str(torch_device),
        },
        "per_episode": [
            {"row": int(row), "start": start.tolist(), "goal": goal.tolist(), "success": bool(ok),
             "random_success": bool(rand_ok), "steps": int(steps), "final_state": final.tolist(),
             "random_final_state": random_final.tolist()}
            for row, start, goal, ok, rand_ok, steps, final, random_final in zip(
                pairs.rows, pairs.starts, pairs.goals, planned.success, random.success, planned.steps_to_success,
                planned.final_states, random.final_states, strict=True)
        ],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "eval.json", json.dumps(result, indent=1))
    plot_success(result, planned, out_dir / "success.png")
    write_video(planned, out_dir / "episodes.gif")
    return result


def _trail(frames: list[np.ndarray], goal: np.ndarray | None = None) -> np.ndarray:
    """Where the agent has been: the darkest value each pixel took (moving objects leave a trace), over a
    faint copy of the goal frame so the target shows too."""
    trail = np.minimum.reduce(frames)
    if goal is None:
        return trail
    ghost = (255 - 0.35 * (255 - goal.astype(np.float32))).astype(np.uint8)
    return np.minimum(trail, ghost)


def _upscale(frame: np.ndarray, size: int = 192) -> np.ndarray:
    factor = max(1, size // frame.shape[0])
    return np.repeat(np.repeat(frame, factor, axis=0), factor, axis=1)


def write_video(planned: Rollouts, path: Path, fps: int = FPS) -> Path | None:
    """GIF of the recorded episodes, one after another: observation | goal | trail, `fps` frames per second,
    holding each episode's last frame `PAUSE_FRAMES` frames long."""
    import imageio.v3 as imageio

    if not planned.frames:
        return None
    video, durations = [], []
    frame_ms = round(1000 / fps)
    for frames, goal in zip(planned.frames, planned.goal_frames, strict=True):
        for step in range(len(frames)):
            video.append(_upscale(np.concatenate([frames[step], goal, _trail(frames[: step + 1], goal)], axis=1)))
            durations.append(frame_ms)
        durations[-1] = PAUSE_FRAMES * frame_ms
    # milliseconds per frame: the v3 API hands `duration` to Pillow's GIF writer as it is (the former v2 call's
    # duration=0.08 was written as 0 ms)
    imageio.imwrite(path, np.stack(video), duration=durations, loop=0)
    return path


def plot_success(result: dict[str, Any], planned: Rollouts, path: Path) -> Path:
    """Bar chart of planned vs random success with 95% intervals, plus the recorded episodes' trails (goal
    shown faint)."""
    plt = pyplot()

    shown = planned.frames[:4]
    figure, axes = plt.subplots(1, 1 + len(shown), figsize=(3.6 * (1 + len(shown)), 3.4))
    axes = np.atleast_1d(axes)
    rates = [result["success_rate"], result["random_success_rate"]]
    intervals = [result["ci95"], result["random_ci95"]]
    errors = np.array([[r - lo, hi - r] for r, (lo, hi) in zip(rates, intervals, strict=True)]).T
    axes[0].bar([f"LeWM + {solver_label(result)}", "random"], rates, yerr=errors, color=["tab:blue", "tab:gray"],
                capsize=6)
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("success rate")
    axes[0].set_title(f"{result['episodes']} episodes, budget {result['protocol']['budget']}")
    for axis, frames, goal, ok in zip(axes[1:], shown, planned.goal_frames, planned.success, strict=False):
        axis.imshow(_trail(frames, goal))
        axis.set_title("reached" if ok else "missed")
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def solver_label(result: dict) -> str:
    """The solver an eval.json dictionary was planned with, as printed ("CEM" for files from before solvers)."""
    return str(result["protocol"].get("solver", "cem")).upper()


def summary_lines(result: dict) -> list[str]:
    """The printed summary of an eval.json dictionary."""
    lo, hi = result["ci95"]
    rlo, rhi = result["random_ci95"]
    return [
        f"success {result['success_rate']:.0%} (95% CI {lo:.0%}-{hi:.0%}) vs random {result['random_success_rate']:.0%}"
        f" (95% CI {rlo:.0%}-{rhi:.0%}) on the same {result['episodes']} start/goal pairs",
        f"{result['trivial_pairs']:.0%} of pairs start within the success radius; planning "
        f"{result['plan_seconds_per_cycle']:.2f} s per batched {solver_label(result)} cycle "
        f"({result['plan_cycles']} cycles); "
        f"{result.get('clipped_action_share', 0.0):.0%} of executed actions clipped to the action box",
    ]
