"""`lewm export RUN --out DIR`: a run as an official LeWM checkpoint folder (weights.pt + config.json)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro


@dataclass
class ExportArgs:
    """Write RUN's model in the released format, which the official code loads with strict=True, plus lewm.json
    (frameskip and action statistics, which the official format does not hold)."""

    run: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="RUN")]
    """Run directory (trained or imported)."""
    out: Path
    """Folder to write weights.pt, config.json and lewm.json into."""
    checkpoint: str = "last.pt"
    """Checkpoint file in RUN/checkpoints."""


def main(argv: list[str]) -> int:
    args = tyro.cli(ExportArgs, args=argv, prog="lewm export")
    from lewm.official import export_official

    out = export_official(args.run, args.out, checkpoint=args.checkpoint)
    print(f"written to {out} (weights.pt with transformers-4 ViT names, config.json, lewm.json)")
    return 0
