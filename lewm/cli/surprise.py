"""`lewm surprise --run RUN --env two-room`: violation of expectation, teleport vs colour change vs control."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tyro

from lewm.utils.io import atomic_write_text


@dataclass
class SurpriseArgs:
    """Surprise (next-embedding prediction error) around a teleport and a colour change
    (docs/reference.md section 8)."""

    run: Path
    """Run directory written by lewm train."""
    env: str = "two-room"
    """Environment whose renderer re-draws the trajectories and whose object is perturbed (two-room: the agent;
    pusht: the block; reacher: the arm; cube: the cube)."""
    data: Path | None = None
    """Episode file with a state column (default: the run's training file)."""
    episodes: int = 32
    """Episodes (held-out ones first) in the paired test."""
    frames: int = 12
    """Frames per trajectory, a frameskip apart."""
    event: int = 6
    """Frame at which the perturbation starts."""
    device: str = "auto"
    """Device for the model: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
    out: Path | None = None
    """Folder for surprise.json and surprise.png (default: RUN/surprise)."""
    json: Path | None = None
    """Also write the numbers to this JSON file."""
    progress: bool = True
    """Show a progress bar (episodes scored) on stderr."""


def main(argv: list[str]) -> int:
    args = tyro.cli(SurpriseArgs, args=argv, prog="lewm surprise")
    from lewm.analysis.surprise import plot_surprise, surprise

    result = surprise(args.run, args.env, args.data, episodes=args.episodes, frames=args.frames, event=args.event,
                      device=args.device, progress=args.progress)
    out = args.out or args.run / "surprise"
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=1)
    for path in (out / "surprise.json", args.json):
        if path is not None:
            atomic_write_text(path, text)
    plot_surprise(result, out / "surprise.png")
    for kind in ("teleport", "colour"):
        numbers = result[kind]
        print(f"{kind:9s} surprise {numbers['mean_surprise']:.3f} vs control {numbers['control_mean_surprise']:.3f} "
              f"at the event: paired t-test p = {numbers['p_value']:.3g}, effect size d_z = "
              f"{numbers['effect_size']:.2f}, n = {numbers['n']}")
    print(f"written to {out} (surprise.json, surprise.png)")
    return 0
