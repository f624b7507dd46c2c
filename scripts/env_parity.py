"""Step lewm's Two-Room and Push-T side by side with stable-worldmodel 0.1.1's reference environments and report
the largest deviations per environment (printed, and written as JSON).

    python scripts/env_parity.py [--two-room-rollouts 400] [--pusht-rollouts 200] [--seed 0]
                                 [--json docs/env_parity.json]

Needs `pip install --no-deps stable-worldmodel==0.1.1` (plus pygame, pymunk, shapely, opencv, loguru, torch).
The comparison itself lives in tests/envs/reference.py, shared with tests/envs/test_reference_parity.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_helper(file: str = "reference.py") -> ModuleType:
    """tests/envs/FILE (reference.py, reference_mujoco.py) as a module (the tests folder is not a package)."""
    name = f"lewm_tests_env_{Path(file).stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "envs" / file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--two-room-rollouts", type=int, default=400)
    parser.add_argument("--two-room-steps", type=int, default=80)
    parser.add_argument("--pusht-rollouts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "env_parity.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    helper = load_helper()
    try:
        push_t, room = helper.load_reference()
    except ImportError as error:
        print(f"env_parity: reference environments unavailable: {error}", file=sys.stderr)
        return 1
    report: dict[str, object] = {"reference": f"stable-worldmodel {helper.REFERENCE_VERSION}", "seed": args.seed,
                                 "python": platform.python_version()}
    runs = {
        "two-room": lambda: helper.compare_two_room(room, args.two_room_rollouts, args.two_room_steps, args.seed),
        "pusht": lambda: helper.compare_pusht(push_t, args.pusht_rollouts, (40, 80), args.seed),
    }
    for name, run in runs.items():
        start = time.perf_counter()
        deviation = run()
        seconds = time.perf_counter() - start
        report[name] = {"rollouts": deviation.rollouts, "compared_states": deviation.steps,
                        "largest_abs_deviation": deviation.values, "seconds": round(seconds, 2)}
        largest = ", ".join(f"{key} {value:.3g}" for key, value in deviation.values.items())
        print(f"{name}: {deviation.rollouts} rollouts, {deviation.steps} states compared, largest deviation: "
              f"{largest} ({seconds:.1f} s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
