"""`lewm demo [--out runs/demo]`: collect -> train -> evaluate Two-Room on the CPU, then a short summary."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from lewm.cli.eval import summary_lines
    from lewm.demo import run_demo

    parser = argparse.ArgumentParser(prog="lewm demo", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for data, run and results")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = run_demo(args.out)
    minutes = (time.perf_counter() - start) / 60
    print(f"\nLeWM demo finished in {minutes:.1f} min "
          + ", ".join(f"{k.removesuffix('_minutes')} {v:.1f}" for k, v in result["timings"].items()))
    for line in summary_lines(result):
        print("  " + line)
    print(f"  results: {args.out / 'eval.json'}; plot: {args.out / 'eval' / 'success.png'}; "
          f"video: {args.out / 'eval' / 'episodes.gif'}; training curves: {args.out / 'run' / 'plots'}")
    return 0
