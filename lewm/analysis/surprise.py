"""Violation of expectation (docs/reference.md section 8): surprise = error of the predicted next embedding, around an
event.

For held-out episodes of a run's data, three versions of the same trajectory are rendered from its stored
states, frames a frameskip apart, with the stored actions:
  control   the trajectory as it happened;
  teleport  from the event frame on, the moving object jumps (Two-Room: the agent; Push-T: the block; Reacher:
            the arm's joints; Cube: the cube) by a fixed displacement and carries on from there — physically
            impossible;
  colour    from the event frame on, the same object is drawn in another colour — visually new, physically
            the same (the paper's Cube claim: a colour change is not significant, a teleport is).
Surprise at frame t is || predict(z_{t-h..t-1}, actions) - z_t ||^2 with the run's own history h. A paired
one-sided t-test (scipy) compares each perturbation with the control at the event frame, over episodes; the
effect size is Cohen's d_z (mean paired difference / its standard deviation).

Shapes: E episodes, T frames, D embedding dim, K action block width.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from scipy.stats import ttest_rel
from tqdm import tqdm

from lewm.data import EpisodeFile, split_episodes
from lewm.data.hdf5 import file_attributes
from lewm.envs import pusht, two_room
from lewm.envs.collect import recorded_env_options
from lewm.envs.cube_scene import CUBE_QPOS  # no MuJoCo import at module level: where the cube's xyz lives
from lewm.envs.registry import canonical_name
from lewm.errors import LewmError
from lewm.model import LeWM
from lewm.runs import LoadedRun, as_run, run_data_path
from lewm.utils.device import resolve_device
from lewm.utils.plotting import pyplot

KINDS = ("control", "teleport", "colour")
EPISODES_PER_BATCH = 8
"""Episodes rendered and scored at once."""


@dataclass(frozen=True)
class Perturbation:
    """How an environment's moving object is teleported and recoloured (one per environment)."""

    columns: slice
    """State columns of the object's position (Two-Room: the agent; Push-T: the block; Reacher: the two joint
    angles; Cube: the cube's x and y)."""
    jump: float
    """Jump along each of those columns, towards the middle of the reachable range, in state units: about a
    third of the free area (Two-Room 60 px, Push-T 120 units), 1 rad per joint, 0.1 m for the cube (2.5 times
    its success tolerance)."""
    low: float
    """Lower clip of the moved coordinates (so the object stays on the canvas / within joint range)."""
    high: float
    """Upper clip."""
    centre: float | None
    """The middle the jump heads for; None: the mean position of the episodes at the event (Cube, whose table
    is not centred at 0)."""


PERTURBATIONS = {
    "two-room": Perturbation(slice(0, 2), 60.0, 21.0, 203.0, 112.0),
    "pusht": Perturbation(slice(2, 4), 120.0, 0.0, 512.0, 256.0),
    # a 1-rad jump towards 0 keeps the wrist inside its +-160 deg (2.79 rad) range; the shoulder is unlimited
    "reacher": Perturbation(slice(0, 2), 1.0, -np.inf, np.inf, 0.0),
    "cube": Perturbation(slice(CUBE_QPOS.start, CUBE_QPOS.start + 2), 0.1, -np.inf, np.inf, None),
}
"""Each environment's teleport."""


def _perturbed_states(env: str, states: np.ndarray, event: int) -> np.ndarray:
    """(E, T, S) states with the object moved by a fixed jump from frame `event` on (towards the middle)."""
    spec = PERTURBATIONS[env]
    moved = states.copy()
    position = states[:, event, spec.columns]  # E 2
    centre = position.mean(axis=0) if spec.centre is None else spec.centre
    direction = np.where(position < centre, 1.0, -1.0)  # jump towards the middle, so it stays in the arena
    moved[:, event:, spec.columns] += spec.jump * direction[:, None, :]
    moved[:, event:, spec.columns] = np.clip(moved[:, event:, spec.columns], spec.low, spec.high)
    return moved


def _renderer(env: str, size: int, options: dict[str, Any]) -> Callable[[np.ndarray, bool], np.ndarray]:
    """render(states (T, S), recolour) -> (T, size, size, 3) frames of the environment (`options`: the data's
    rendering options, Cube's shadows). The colour change: Two-Room's agent blue, Push-T's block orange,
    Reacher's arm blue, Cube's cube green."""
    if env == "two-room":
        return lambda states, recolour: two_room.render_frames(
            states[:, :2], size, agent_color=(0.0, 0.0, 255.0) if recolour else two_room.AGENT_COLOR)
    if env == "pusht":
        return lambda states, recolour: pusht.render_frames(
            states, size, block_color=(230, 120, 30) if recolour else pusht.BLOCK_COLOR)
    if env == "reacher":
        from lewm.envs.reacher import render_frames as render_reacher

        return lambda states, recolour: render_reacher(states, size, arm_rgb=(0.2, 0.3, 0.9) if recolour else None)
    from lewm.envs.cube import render_frames as render_cube

    return lambda states, recolour: render_cube(states, size, cube_rgba=(0.1, 0.8, 0.2, 1.0) if recolour else None,
                                                **options)


def _surprise(model: LeWM, frames: torch.Tensor, blocks: torch.Tensor) -> np.ndarray:
    """(E, T, 3, H, W) frames and (E, T-1, K) action blocks -> (E, T) surprise (NaN at t = 0)."""
    history = model.config.history
    emb = model.encode(frames)  # E T D
    out = np.full(emb.shape[:2], np.nan)
    for t in range(1, emb.shape[1]):
        first = max(0, t - history)
        predicted = model.rollout(emb[:, first:t], blocks[:, t - 1 : t], blocks[:, first : t - 1])[:, 0]  # E D
        out[:, t] = ((predicted - emb[:, t]) ** 2).sum(-1).cpu().numpy()
    return out


@torch.inference_mode()
def _curves(model: LeWM, render: Callable[[np.ndarray, bool], np.ndarray], versions: dict[str, tuple[np.ndarray, bool]],
            blocks: torch.Tensor, event: int, progress: bool) -> dict[str, np.ndarray]:
    """(E, T) surprise of every version {kind: ((E, T, S) states, recolour)}: each trajectory rendered as it was
    before `event` and as the version has it from there on, `EPISODES_PER_BATCH` episodes at a time (a bar of
    episodes on stderr with `progress`)."""
    curves, count = {}, len(blocks)
    with tqdm(total=len(versions) * count, desc="surprise", unit="episode", dynamic_ncols=True,
              disable=not progress) as bar:
        for kind, (kind_states, recolour) in versions.items():
            bar.set_postfix_str(kind)
            parts = []
            for begin in range(0, count, EPISODES_PER_BATCH):
                chosen = slice(begin, begin + EPISODES_PER_BATCH)
                pixels = np.stack([np.concatenate([render(episode[:event], False), render(episode[event:], recolour)])
                                   for episode in kind_states[chosen]])  # e T H W 3
                tensor = rearrange(torch.from_numpy(pixels).to(blocks.device), "e t h w c -> e t c h w")
                parts.append(_surprise(model, tensor, blocks[chosen]))  # e T
                bar.update(len(pixels))
            curves[kind] = np.concatenate(parts)  # E T
    return curves


def surprise(run_dir: Path | LoadedRun, env: str, data_path: Path | None = None, episodes: int = 32, frames: int = 12,
             event: int = 6, device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Surprise curves and paired tests for teleport and colour perturbations of a run (its directory or a
    `LoadedRun`); returns the JSON dictionary. `progress`: a bar of episodes scored on stderr."""
    env = canonical_name(env)
    device = resolve_device(device)
    run = as_run(run_dir, device)
    run_dir = run.run_dir
    model, config = run.model, run.config
    frameskip = config.model.frameskip
    if not 1 <= event < frames:
        raise LewmError(f"surprise: event = {event} must lie in [1, frames - 1 = {frames - 1}]")
    data_path = run_data_path(run, data_path)
    span = (frames - 1) * frameskip + 1
    with EpisodeFile(data_path, pixels_key=config.data.pixels_key, action_key=config.data.action_key) as data:
        if "state" not in data.columns:
            raise LewmError(f"{data_path}: no 'state' column: surprise re-renders trajectories from their states")
        train_eps, val_eps = split_episodes(data.num_episodes, config.data.val_fraction, config.seed)
        pool = np.concatenate([val_eps, train_eps])  # held-out episodes first
        chosen = [e for e in pool if data.ep_len[e] >= span][:episodes]
        if len(chosen) < 3:
            raise LewmError(f"{data_path}: {len(chosen)} episode(s) have the {span} steps that {frames} frames "
                            f"{frameskip} steps apart need; a paired test needs at least 3")
        state_column, action_column = data.dataset("state"), data.dataset(config.data.action_key)
        states = np.stack([state_column[data.ep_offset[e] : data.ep_offset[e] + span : frameskip] for e in chosen])
        actions = np.stack([action_column[data.ep_offset[e] : data.ep_offset[e] + span - 1] for e in chosen])
        size = data.image_shape[0]
    options = recorded_env_options(file_attributes(data_path))  # render as the data were (Cube's shadows)
    states = states.astype(np.float64)  # E T S
    actions = np.nan_to_num(np.asarray(run.stats.normalize(config.data.action_key, actions), dtype=np.float32))
    blocks = torch.from_numpy(rearrange(actions, "e (t f) a -> e t (f a)", f=frameskip)).to(device)  # E T-1 K

    versions = {"control": (states, False), "teleport": (_perturbed_states(env, states, event), False),
                "colour": (states, True)}
    curves = _curves(model, _renderer(env, size, options), versions, blocks, event, progress)  # kind -> E T

    result: dict[str, Any] = {"env": env, "run": str(run_dir), "data": str(data_path), "checkpoint_step": run.step,
                              "episodes": len(chosen),
                              "frames": frames, "event": event, "frameskip": frameskip,
                              # frame 0 has no prediction: its entry is None
                              "mean_curve": {kind: [None, *curve[:, 1:].mean(axis=0).tolist()]
                                             for kind, curve in curves.items()}}
    control = curves["control"][:, event]
    for kind in ("teleport", "colour"):
        difference = curves[kind][:, event] - control
        test = ttest_rel(curves[kind][:, event], control, alternative="greater")
        spread = difference.std(ddof=1)
        result[kind] = {"p_value": float(test.pvalue), "effect_size": float(difference.mean() / spread)
                        if spread > 0 else float("inf") * np.sign(difference.mean()), "n": len(chosen),
                        "mean_surprise": float(curves[kind][:, event].mean()),
                        "control_mean_surprise": float(control.mean())}
    return result


def plot_surprise(result: dict[str, Any], path: Path) -> Path:
    """Mean surprise over time for control, teleport and colour, the event marked."""
    plt = pyplot()

    figure, axis = plt.subplots(figsize=(6, 3.5))
    steps = np.arange(result["frames"])
    for kind, colour in zip(KINDS, ("tab:gray", "tab:red", "tab:blue"), strict=True):
        label = kind if kind == "control" else f"{kind} (p = {result[kind]['p_value']:.2g})"
        axis.plot(steps[1:], result["mean_curve"][kind][1:], marker="o", color=colour, label=label)
    axis.axvline(result["event"], color="black", linestyle="--", linewidth=1)
    axis.set_xlabel(f"frame ({result['frameskip']} env steps apart)")
    axis.set_ylabel("surprise ||pred - z||^2")
    axis.set_title(f"violation of expectation, {result['env']}, {result['episodes']} episodes")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
