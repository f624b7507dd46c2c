"""The Two-Room demo's seed-to-seed spread, and the demo model's probe and surprise figures the README quotes.

    python scripts/demo_seeds.py [--out runs/demo-seeds] [--seeds 0 1 2] [--json docs/tworoom_cpu_demo_seeds.json]

Collects the demo's data once (seed 0), then runs the demo's training and evaluation once per training seed
(the evaluation pairs stay the protocol's seed 42), and writes every seed's success, random baseline and
minutes with their mean and range. On the first seed's model it also runs `lewm probe --target proprio` and
`lewm surprise --env two-room` and writes docs/tworoom_cpu_probe.json and docs/tworoom_cpu_surprise.json.
Finished stages are reused when rerun.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

from lewm.utils.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def run_seed(out: Path, seed: int, shared_data: Path | None) -> dict:
    """One demo run with training seed `seed` (on `shared_data` when given: the first seed's collection);
    returns its eval.json plus timings."""
    from lewm.workflows.demo import DEMO_PLANS, data_name, demo_train_config, run_demo

    plan = DEMO_PLANS["two-room"]
    folder = out / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / data_name("two-room", plan)
    if shared_data is not None and not data.exists():
        data.symlink_to(shared_data.resolve())
    config = demo_train_config(data, folder / "run", plan)
    config.seed = seed
    config.validate()
    return run_demo(folder, plan=plan, train_config=config, env="two-room")


def analyses(run: Path, data: Path) -> None:
    """Probe and surprise of one demo model, written where the README cites them."""
    from lewm.analysis.probe import ProbeConfig, probe
    from lewm.analysis.surprise import surprise

    probed = probe(run, ["proprio"], data, config=ProbeConfig())
    atomic_write_text(ROOT / "docs" / "tworoom_cpu_probe.json", json.dumps(probed, indent=1) + "\n")
    surprised = surprise(run, "two-room", data)
    atomic_write_text(ROOT / "docs" / "tworoom_cpu_surprise.json", json.dumps(surprised, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo-seeds"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "tworoom_cpu_demo_seeds.json")
    args = parser.parse_args(argv)
    runs = {}
    for index, seed in enumerate(args.seeds):
        shared = None if index == 0 else next((args.out / f"seed{args.seeds[0]}").glob("*.h5"))
        result = run_seed(args.out, seed, shared)
        runs[seed] = {"success_rate": result["success_rate"], "ci95": result["ci95"],
                      "random_success_rate": result["random_success_rate"], "timings": result["timings"]}
        print(f"seed {seed}: success {result['success_rate']:.0%} vs random {result['random_success_rate']:.0%}")
    rates = [r["success_rate"] for r in runs.values()]
    report = {"command": "python scripts/demo_seeds.py", "machine": f"{platform.machine()}, 2-core CPU",
              "seeds": runs, "success_mean": statistics.mean(rates), "success_min": min(rates),
              "success_max": max(rates), "success_std": statistics.pstdev(rates),
              "note": "training seed varies; data (collection seed 0) and evaluation pairs (seed 42) are shared"}
    atomic_write_text(args.json, json.dumps(report, indent=1) + "\n")
    first = args.out / f"seed{args.seeds[0]}"
    analyses(first / "run", next(first.glob("*.h5")))
    print(f"written to {args.json}, docs/tworoom_cpu_probe.json, docs/tworoom_cpu_surprise.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
