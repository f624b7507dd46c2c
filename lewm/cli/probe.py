"""`lewm probe --run RUN --target state[0:2] state[2:4]`: linear and MLP probes from frozen embeddings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from lewm.analysis.probe import ProbeConfig
from lewm.utils.io import atomic_write_text


@dataclass
class ProbeArgs:
    """Fit linear and MLP probes from a run's frozen embeddings to physical quantities (docs/reference.md section 8)."""

    run: Path
    """Run directory written by lewm train."""
    target: list[str] = field(default_factory=lambda: ["proprio"])
    """Columns to probe, each optionally sliced: proprio, state, state[0:2], state[4], or an angle as (cos, sin):
    sincos(state[4]) (several after one flag)."""
    data: Path | None = None
    """Episode file (default: the run's training file)."""
    device: str = "auto"
    """Device for the encoder: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
    json: Path | None = None
    """Also write the numbers to this JSON file."""
    progress: bool = True
    """Show progress bars (frames encoded and probes fitted) on stderr."""
    settings: Annotated[ProbeConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=ProbeConfig)
    """Probe settings."""


def _numbers(scores: dict) -> str:
    """One probe's printed scores; sincos targets add the median angle error read back with atan2."""
    text = f"MSE {scores['mse']:.4f} r {scores['r']:.3f}"
    if "angle_median_abs_rad" in scores:
        text += f" angle error median {scores['angle_median_abs_rad']:.3f} rad (RMSE {scores['angle_rmse_rad']:.3f})"
    return text


def main(argv: list[str]) -> int:
    args = tyro.cli(ProbeArgs, args=argv, prog="lewm probe")
    from lewm.analysis.probe import probe

    result = probe(args.run, args.target, data_path=args.data, config=args.settings, device=args.device,
                   progress=args.progress)
    meta = result["_meta"]
    print(f"probes on {meta['test_frames']} frames of {meta['test_episodes']} held-out episodes "
          f"(fitted on {meta['train_frames']} frames of {meta['train_episodes']}); MSE in target std units")
    for target, scores in result.items():
        if target != "_meta":
            line = f"  {target:14s} linear: {_numbers(scores['linear'])}"
            if "mlp" in scores:
                line += f"   MLP: {_numbers(scores['mlp'])}"
            print(line)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result, indent=1))
        print(f"written to {args.json}")
    return 0
