"""`lewm import SRC --out RUN`: an official LeWM checkpoint (folder or hf:OWNER/NAME[@REV]) as a lewm run."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class ImportArgs:
    """Import an official checkpoint (weights.pt + config.json); eval, probe, surprise, straightness, report and
    export then work on RUN."""

    src: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="SRC")]
    """A folder with weights.pt and config.json, or hf:OWNER/NAME[@REVISION] (fetched into the Hugging Face cache)."""
    out: Path
    """Run directory to write."""
    frameskip: int | None = None
    """Raw actions per action block; action_encoder.input_dim = frameskip x action size."""
    data: Path | None = None
    """The model's training data (HDF5): gives the action size, the official action statistics, and the episodes
    eval and the analyses draw from."""
    env: str | None = None
    """Environment the model acts in (gives the action size)."""
    action_key: str = "action"
    """Name of the action column in --data."""


def main(argv: list[str]) -> int:
    args = tyro.cli(ImportArgs, args=argv, prog="lewm import")
    from lewm.official import import_official

    report = import_official(args.src, args.out, frameskip=args.frameskip, data=args.data, env=args.env,
                             action_key=args.action_key)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"imported {args.src}: {report.parameters / 1e6:.2f}M parameters, frameskip {report.frameskip} x action "
          f"size {report.action_dim} (from {report.split_from}), action statistics from {report.stats_from}")
    print(f"written to {report.run_dir} (config.yaml, checkpoints/last.pt, import.json)")
    return 0
