"""`lewm demo [--env two-room|pusht] [--out DIR]`: collect -> train -> evaluate on the CPU, then a summary."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    from lewm.envs.registry import canonical_name
    from lewm.evaluation import summary_lines
    from lewm.workflows.demo import run_demo

    parser = argparse.ArgumentParser(prog="lewm demo", description=__doc__)
    parser.add_argument("--env", default="two-room", help="two-room (about 7 min on 2 cores) or pusht (about 35 min)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for data, run and results (default runs/demo, runs/demo-pusht)")
    args = parser.parse_args(argv)
    env = canonical_name(args.env)
    args.out = args.out or Path("runs/demo" if env == "two-room" else f"runs/demo-{env}")
    start = time.perf_counter()
    result = run_demo(args.out, env=env)
    minutes = (time.perf_counter() - start) / 60
    print(f"\nLeWM demo finished in {minutes:.1f} min "
          + ", ".join(f"{k.removesuffix('_minutes')} {v:.1f}" for k, v in result["timings"].items()))
    for line in summary_lines(result):
        print("  " + line)
    print(f"  results: {args.out / 'eval.json'}; plot: {args.out / 'eval' / 'success.png'}; "
          f"video: {args.out / 'eval' / 'episodes.gif'}; training curves: {args.out / 'run' / 'plots'}")
    return 0
