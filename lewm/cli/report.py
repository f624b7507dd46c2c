"""`lewm report RUN [RUN ...] --out DIR [--env two-room] [--evaluate]`: one page comparing runs side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from lewm.utils.io import atomic_write_text
from lewm.workflows.report import ReportConfig


@dataclass
class ReportArgs:
    """Probe, straightness, surprise and planning numbers of several runs in one table (printed) and one page
    (Markdown and HTML, with the training curves overlaid). Missing numbers are computed and cached in each run."""

    runs: tyro.conf.Positional[list[Path]]
    """Run directories written by lewm train."""
    out: Path = Path("runs/report")
    """Folder for report.md, report.html, report.json and the plots."""
    json: Path | None = None
    """Also write the table and the per-run numbers to this JSON file."""
    settings: Annotated[ReportConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=ReportConfig)
    """What to compute for runs that lack it."""


def main(argv: list[str]) -> int:
    args = tyro.cli(ReportArgs, args=argv, prog="lewm report")
    from lewm.workflows.report import report

    result = report(args.runs, args.out, args.settings)
    print(result["markdown"])
    if args.json is not None:
        atomic_write_text(args.json, json.dumps({"runs": result["runs"], "table": result["table"]}, indent=1))
    print(f"written to {args.out} (report.md, report.html, report.json, curves.png)")
    return 0
