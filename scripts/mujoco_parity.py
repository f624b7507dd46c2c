"""Step lewm's Reacher and Cube side by side with stable-worldmodel 0.1.1's reference environments and report the
largest deviations per environment (printed, and written as JSON).

    python scripts/mujoco_parity.py [--reacher-rollouts 100] [--cube-rollouts 12] [--seed 0]
                                    [--json docs/mujoco_parity.json]

Needs the MuJoCo extra (`pip install -e ".[mujoco]"`) and `pip install --no-deps stable-worldmodel==0.1.1`. The
comparison itself lives in tests/envs/reference_mujoco.py, shared with tests/envs/test_reacher_parity.py and
tests/envs/test_cube_parity.py, so the tests and this report measure the same thing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from env_parity import ROOT, load_helper

import lewm.envs  # noqa: F401  (sets MUJOCO_GL before anything imports MuJoCo)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reacher-rollouts", type=int, default=100)
    parser.add_argument("--cube-rollouts", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "mujoco_parity.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    helper = load_helper("reference_mujoco.py")
    try:
        reacher, cube = helper.load_reacher_reference(), helper.load_cube_reference()
    except ImportError as error:
        print(f"mujoco_parity: reference environments unavailable: {error}", file=sys.stderr)
        return 1
    report: dict[str, object] = {"reference": "stable-worldmodel 0.1.1", "seed": args.seed,
                                 "python": platform.python_version(), "machine": platform.processor() or "cpu"}
    runs = {"reacher": lambda: helper.compare_reacher(reacher, args.reacher_rollouts, seed=args.seed),
            "cube": lambda: helper.compare_cube(cube, args.cube_rollouts, seed=args.seed)}
    for name, run in runs.items():
        start = time.perf_counter()
        deviation = run()
        seconds = time.perf_counter() - start
        report[name] = {"rollouts": deviation.rollouts, "compared_steps": deviation.steps,
                        "largest_abs_deviation": deviation.values, "flag_mismatches": deviation.mismatches,
                        "seconds": round(seconds, 2)}
        print(deviation.report(name) + f" ({seconds:.1f} s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
