"""`lewm lambda-search --data FILE.h5 --out DIR [search flags] [any lewm train flag]`: bisection on lambda."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from lewm.config import parse_train_config
from lewm.utils.io import atomic_write_text
from lewm.workflows.lambda_search import LambdaSearchConfig


@dataclass
class LambdaSearchArgs:
    """Bisect lambda (the SIGReg weight) on a validation criterion with O(log n) short trainings. Flags not
    listed here (--preset, --steps, --model.history ...) configure every trial's training, as in lewm train."""

    data: Path
    """HDF5 episode file every trial trains on."""
    out: Path
    """Folder for the trial runs (OUT/lambda_<value>/) and lambda_search.json / .png."""
    json: Path | None = None
    """Also write the trials and the chosen lambda to this JSON file."""
    search: Annotated[LambdaSearchConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=LambdaSearchConfig)
    """Search range, rounds and criterion."""


def main(argv: list[str]) -> int:
    args, train_flags = tyro.cli(LambdaSearchArgs, args=argv, prog="lewm lambda-search", return_unknown_args=True)
    base = parse_train_config([*train_flags, "--data", str(args.data), "--out", str(args.out)])
    from lewm.workflows.lambda_search import lambda_search

    result = lambda_search(base, args.out, args.search)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    print(f"written to {args.out} (lambda_search.json, lambda_search.png)")
    return 0
