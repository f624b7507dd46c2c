"""Every solver on the same start/goal pairs: success (95% CI) and seconds per planning cycle, in one process.

    python benchmarks/solvers.py --run runs/demo/run --env two-room --json docs/benchmarks/solvers_tworoom_cpu.json
    python benchmarks/solvers.py --run runs/demo-pusht/run --env pusht --budgets cem:300x30 icem:100x30,100x10
    python benchmarks/solvers.py --run runs/demo/run --env two-room --solvers cem,gd,gd:lr=0.01

Each solver plans under the paper's protocol (`lewm eval`'s receding-horizon loop, the same seed, pairs and
action box) at a few budgets, samples x iterations (gradient descent: sequences x steps). The first budget of a
solver is its protocol default (`lewm.evaluation.default_planner`); the others cut samples, iterations or both
(elites scale with samples, 10%). A random policy runs on the same pairs.

Timing: `first_cycle_seconds` is the first planning call, when every episode that does not start solved is
planned (the same batch for every solver, so the fairest comparison); `seconds_per_cycle` is the mean over all
calls (later calls plan only the unfinished episodes, so a solver that succeeds early has cheaper later cycles).
`success_per_second` = success rate / first-cycle seconds; `above_random_per_second` = (success rate - the random
policy's) / first-cycle seconds, which does not reward a planner for the goals random actions reach too. The
table, the JSON (`--json`) and a plot of success against first-cycle seconds (`--plot`, default: the JSON path
with .png) say which machine ran them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from _common import setup_device
from tabulate import tabulate

from lewm.evaluation import EvalConfig, default_eval_config, eval_setup, run_planner, run_random, wilson_interval
from lewm.planning import SOLVER_NAMES, PlannerConfig
from lewm.runs import as_run
from lewm.utils.io import atomic_write_text
from lewm.utils.plotting import pyplot


def default_budgets(solver: str, iterations: int) -> list[tuple[int, int]]:
    """(samples, iterations) to try for `solver`, the protocol default first; `iterations` is the protocol's
    (10, or 30 on Push-T)."""
    third = max(1, iterations // 3)
    sampling = [(300, iterations), (100, iterations), (50, iterations), (100, third)]
    return {
        "cem": sampling, "icem": sampling, "mppi": sampling,
        "ps": [(300, 1), (300, third), (300, iterations)],
        "gd": [(1, iterations), (16, iterations), (16, 3 * iterations)],
    }[solver]


def parse_solvers(spec: str) -> list[tuple[str, dict[str, float]]]:
    """`cem,icem,gd:lr=0.01` -> [(name, settings overrides)]: a solver may appear again with other settings."""
    solvers = []
    for entry in filter(None, (item.strip() for item in spec.split(","))):
        name, *settings = entry.split(":")
        if name not in SOLVER_NAMES:
            raise SystemExit(f"--solvers {entry!r}: {name!r} is not one of {', '.join(SOLVER_NAMES)}")
        try:
            overrides = {key: float(value) for key, value in (item.split("=", 1) for item in settings)}
        except ValueError:
            raise SystemExit(f"--solvers {entry!r}: settings are FIELD=NUMBER, e.g. gd:lr=0.01") from None
        solvers.append((name, overrides))
    return solvers


def parse_budgets(entries: list[str] | None, solvers: list[str], iterations: int) -> dict[str, list[tuple[int, int]]]:
    """`solver:SxI[,SxI...]` entries over the defaults."""
    budgets = {solver: default_budgets(solver, iterations) for solver in solvers}
    for entry in entries or []:
        solver, _, spec = entry.partition(":")
        if solver not in SOLVER_NAMES or not spec:
            raise SystemExit(f"--budgets {entry!r}: expected SOLVER:SAMPLESxITERATIONS[,...] with SOLVER in "
                             f"{', '.join(SOLVER_NAMES)}")
        try:
            budgets[solver] = [tuple(int(n) for n in item.split("x", 1)) for item in spec.split(",")]
        except ValueError:
            raise SystemExit(f"--budgets {entry!r}: each budget is SAMPLESxITERATIONS, e.g. 100x10") from None
    return budgets


def budget_planner(base: PlannerConfig, samples: int, iterations: int) -> PlannerConfig:
    """`base` at another budget; elites stay 10% of the samples (at least 2, MPPI 1), kept elites fit in."""
    elites = min(samples, max(2 if base.solver != "mppi" else 1, round(base.elites * samples / base.samples)))
    planner = replace(base, samples=samples, iterations=iterations)
    if base.solver in ("cem", "icem", "mppi"):
        planner = replace(planner, elites=elites)
    if base.solver == "icem":
        planner = replace(planner, keep_elites=min(base.keep_elites, elites, samples - 1))
    planner.validate()
    return planner


def measure(run, env: str, setup, config: EvalConfig, device: torch.device) -> dict:
    """One solver at one budget on the shared pairs: its success, interval and plan times."""
    rollouts = run_planner(run.model, run.stats, env, setup.pairs, setup.image_size, config, device,
                           action_key=run.config.data.action_key, progress=True, env_options=setup.env_options)
    successes, count = int(rollouts.success.sum()), len(rollouts.success)
    first = rollouts.plan_seconds[0] if rollouts.plan_seconds else float("nan")
    return {
        "solver": config.planner.solver, "samples": config.planner.samples, "iterations": config.planner.iterations,
        "settings": config.planner.settings(), "success_rate": successes / count,
        "ci95": list(wilson_interval(successes, count)), "first_cycle_seconds": first,
        "seconds_per_cycle": float(np.mean(rollouts.plan_seconds)) if rollouts.plan_seconds else float("nan"),
        "cycles": len(rollouts.plan_seconds), "success_per_second": successes / count / first,
    }


def cem_target(results: list[dict]) -> dict:
    """The issue's target: a solver within 4 points of the default CEM's success at a third or less of its
    first-cycle plan time; and the best success (and success above random) per second."""
    cem = results[0] if results[0]["solver"] == "cem" else None
    summary = {"best_success_per_second": _label(max(results, key=lambda row: row["success_per_second"])),
               "best_above_random_per_second": _label(max(results, key=lambda row: row["above_random_per_second"]))}
    if cem:
        meets = [_label(row) for row in results[1:] if row["success_rate"] >= cem["success_rate"] - 0.04
                 and row["first_cycle_seconds"] <= cem["first_cycle_seconds"] / 3]
        summary.update(reference=_label(cem), within_4_points_at_a_third_of_the_time=meets)
    return summary


def _label(row: dict) -> str:
    settings = "".join(f" {key}={value:g}" for key, value in row.get("overrides", {}).items())
    return f"{row['solver']}{settings} {row['samples']}x{row['iterations']}"


def print_table(results: list[dict], random_rate: float) -> None:
    rows = [[_label(row), f"{row['success_rate']:.0%}", f"{row['ci95'][0]:.0%}-{row['ci95'][1]:.0%}",
             f"{row['first_cycle_seconds']:.2f}", f"{row['seconds_per_cycle']:.2f}", f"{row['success_per_second']:.3f}",
             f"{row['above_random_per_second']:.3f}"] for row in results]
    rows.append(["random", f"{random_rate:.0%}", "", "", "", "", ""])
    print(tabulate(rows, headers=["solver SxI", "success", "95% CI", "s first cycle", "s per cycle", "success/s",
                                  "above random/s"]))


def plot(results: list[dict], random_rate: float, title: str, path: Path) -> None:
    """Success against first-cycle plan seconds (log), one line per solver through its budgets."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    for variant in dict.fromkeys(_variant(row) for row in results):
        rows = sorted((row for row in results if _variant(row) == variant), key=lambda row: row["first_cycle_seconds"])
        x = [row["first_cycle_seconds"] for row in rows]
        y = [row["success_rate"] for row in rows]
        errors = np.array([[row["success_rate"] - row["ci95"][0], row["ci95"][1] - row["success_rate"]]
                           for row in rows]).T
        axis.errorbar(x, y, yerr=errors, marker="o", capsize=3, label=variant)
        for row in rows:
            axis.annotate(f"{row['samples']}x{row['iterations']}", (row["first_cycle_seconds"], row["success_rate"]),
                          fontsize=7, xytext=(3, 3), textcoords="offset points")
    axis.axhline(random_rate, color="gray", linestyle="--", label="random")
    axis.set_xscale("log")
    axis.set_ylim(0, 1)
    axis.set_xlabel("seconds per planning cycle (first cycle, every unsolved episode)")
    axis.set_ylabel("success rate")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory written by lewm train")
    parser.add_argument("--env", required=True, help="environment name (lewm.envs.make)")
    parser.add_argument("--episodes", type=int, default=50, help="start/goal pairs (paper: 50)")
    parser.add_argument("--solvers", default=",".join(SOLVER_NAMES),
                        help="comma-separated, in this order; NAME:FIELD=VALUE[:...] runs a solver with other "
                             "settings (e.g. gd:lr=0.01) beside its defaults")
    parser.add_argument("--budgets", nargs="*", help="SOLVER:SxI[,SxI...] replacing a solver's default budgets")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--plot", type=Path, help="the plot (default: the --json path with .png)")
    parser.add_argument("--checkpoint", default="last.pt", help="checkpoint file in RUN/checkpoints")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    device, machine = setup_device(args.device, args.threads)
    run = as_run(args.run, device, checkpoint=args.checkpoint)
    protocol = default_eval_config(args.env, args.episodes)
    setup = eval_setup(run, protocol)
    solvers = parse_solvers(args.solvers)
    budgets = parse_budgets(args.budgets, [name for name, _ in solvers], protocol.planner.iterations)
    started = time.perf_counter()
    random = run_random(args.env, setup.pairs, setup.image_size, protocol.budget, protocol.seed, videos=0,
                        env_options=setup.env_options)
    random_rate, results = float(random.success.mean()), []
    for solver, overrides in solvers:
        base = replace(default_eval_config(args.env, args.episodes, solver=solver).planner, **overrides)
        # untimed warm-up on two pairs: thread pools, allocator, autograd's first backward (gd)
        warmup = replace(protocol, planner=budget_planner(base, min(10, base.samples), 1))
        measure(run, args.env, replace(setup, pairs=_first(setup.pairs, 2)), warmup, device)
        for samples, iterations in budgets[solver]:
            config = replace(protocol, planner=budget_planner(base, samples, iterations))
            row = measure(run, args.env, setup, config, device)
            gain = (row["success_rate"] - random_rate) / row["first_cycle_seconds"]
            results.append({**row, "above_random_per_second": gain, "overrides": overrides})
            print(f"{_label(results[-1])}: {results[-1]['success_rate']:.0%}, "
                  f"{results[-1]['first_cycle_seconds']:.2f} s first cycle", flush=True)
    print_table(results, random_rate)
    summary = cem_target(results)
    print(json.dumps(summary, indent=1))
    report = {
        "command": "python benchmarks/solvers.py " + " ".join(sys.argv[1:]), "machine": machine, "device": str(device),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "run": str(args.run),
        "checkpoint": args.checkpoint, "checkpoint_step": run.step, "env": args.env,
        "episodes": len(setup.pairs.rows), "protocol": {k: v for k, v in asdict(protocol).items() if k != "planner"},
        "random_success_rate": random_rate, "random_ci95": list(wilson_interval(int(random.success.sum()),
                                                                               len(random.success))),
        "trivial_pairs": float(random.solved_at_start.mean()), "results": results, "summary": summary,
        "wall_seconds": time.perf_counter() - started, "seeds": "one seed (protocol seed 42) for pairs and noise",
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(report, indent=1))
        plot(results, random_rate, f"{args.env}, {report['episodes']} pairs, {machine}",
             args.plot or args.json.with_suffix(".png"))


def _variant(row: dict) -> str:
    """A solver and its settings overrides, without the budget."""
    return _label(row).rsplit(" ", 1)[0]


def _first(pairs, count: int):
    """The first `count` start/goal pairs."""
    return replace(pairs, starts=pairs.starts[:count], goals=pairs.goals[:count], rows=pairs.rows[:count])


if __name__ == "__main__":
    main()
