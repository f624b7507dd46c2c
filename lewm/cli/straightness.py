"""`lewm straightness --run RUN`: mean cosine between consecutive latent velocities along held-out episodes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tyro

from lewm.utils.io import atomic_write_text


@dataclass
class StraightnessArgs:
    """Temporal straightness of a run's latent trajectories (docs/reference.md section 8); the trainer also logs it
    per batch."""

    run: Path
    """Run directory written by lewm train."""
    data: Path | None = None
    """Episode file (default: the run's training file; its validation episodes are used)."""
    episodes: int = 32
    """Validation episodes measured."""
    stride: int | None = None
    """Steps between the frames compared (default: the run's frameskip)."""
    device: str = "auto"
    """Device for the encoder: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
    json: Path | None = None
    """Also write the numbers to this JSON file."""


def main(argv: list[str]) -> int:
    args = tyro.cli(StraightnessArgs, args=argv, prog="lewm straightness")
    from lewm.analysis.straightness import straightness

    result = straightness(args.run, args.data, episodes=args.episodes, device=args.device, stride=args.stride)
    print(f"straightness {result['straightness']:.4f} (mean cosine of consecutive latent velocities, "
          f"{result['episodes']} episodes, frames {result['stride']} steps apart, checkpoint step "
          f"{result['checkpoint_step']})")
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result, indent=1))
        print(f"written to {args.json}")
    return 0
