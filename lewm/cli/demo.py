"""`lewm demo [--env two-room|pusht|reacher|cube] [--out DIR]`: collect, train and evaluate on the CPU, summarised."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import tyro


@dataclass
class DemoArgs:
    """Collect data, train on the CPU and evaluate, in one command, then print a summary."""

    env: str = "two-room"
    """two-room (about 7 min on 2 cores), pusht (about 35 min), reacher (about 34 min) or cube (about 33 min);
    reacher and cube need MuJoCo: pip install -e ".[mujoco]"."""
    out: Path | None = None
    """Folder for data, run and results (default runs/demo, runs/demo-ENV for the others)."""


def main(argv: list[str]) -> int:
    args = tyro.cli(DemoArgs, args=argv, prog="lewm demo")
    from lewm.envs.registry import canonical_name
    from lewm.evaluation import summary_lines
    from lewm.workflows.demo import run_demo

    env = canonical_name(args.env)
    out = args.out or Path("runs/demo" if env == "two-room" else f"runs/demo-{env}")
    start = time.perf_counter()
    result = run_demo(out, env=env)
    minutes = (time.perf_counter() - start) / 60
    print(f"\nLeWM demo finished in {minutes:.1f} min "
          + ", ".join(f"{k.removesuffix('_minutes')} {v:.1f}" for k, v in result["timings"].items()))
    for line in summary_lines(result):
        print("  " + line)
    print(f"  results: {out / 'eval.json'}; plot: {out / 'eval' / 'success.png'}; "
          f"video: {out / 'eval' / 'episodes.gif'}; training curves: {out / 'run' / 'plots'}")
    return 0
