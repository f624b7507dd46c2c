"""`lewm eval --run RUN_DIR --env two-room [--solver cem|icem|mppi|gd|ps]`: the paper's planning protocol beside a
random policy."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from lewm.evaluation import EvalConfig, default_eval_config, summary_lines
from lewm.planning import SOLVER_NAMES


@dataclass
class EvalArgs:
    """Evaluate a trained run by planning towards goals 25 steps ahead (docs/reference.md section 6)."""

    run: Path
    """Run directory written by lewm train."""
    env: str = "two-room"
    """Environment name (lewm.envs.make)."""
    data: Path | None = None
    """Episode file to draw start/goal pairs from (default: the run's training file, validation episodes)."""
    device: str = "auto"
    """Device for the model and the planner: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
    out: Path | None = None
    """Where eval.json, the plot and the video go (default: RUN_DIR/eval)."""
    checkpoint: str = "last.pt"
    """Checkpoint file in RUN_DIR/checkpoints (e.g. step_0000600.pt with --keep-step-checkpoints)."""
    protocol: Annotated[EvalConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=EvalConfig)
    """Protocol and planner settings (defaults: the paper's, per environment)."""
    progress: bool = True
    """Show progress bars (planning, then the random baseline) on stderr."""


def parse_eval_args(argv: list[str]) -> EvalArgs:
    """The environment's paper protocol for the solver (30 rounds on Push-T, 10 elsewhere; the solver's reference
    defaults otherwise), then every flag on top.

    --env and --solver are read first because the protocol defaults (shown by --help, overridden by flags) depend
    on them; tyro chooses between default objects only through subcommands, which would make `--env pusht` a
    positional word."""
    first = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    first.add_argument("--env", nargs="?")  # a flag without its value is tyro's error to report
    first.add_argument("--solver", nargs="?")
    known = first.parse_known_args(argv)[0]
    env = known.env or EvalArgs.env
    solver = known.solver if known.solver in SOLVER_NAMES else "cem"  # an unknown name is tyro's to report
    default = EvalArgs(run=tyro.MISSING, env=env, protocol=default_eval_config(env, solver=solver))
    return tyro.cli(EvalArgs, args=argv, prog="lewm eval", default=default)


def main(argv: list[str]) -> int:
    args = parse_eval_args(argv)
    from lewm.evaluation import evaluate

    result = evaluate(args.run, args.env, data_path=args.data, config=args.protocol, device=args.device,
                      out_dir=args.out, checkpoint=args.checkpoint, progress=args.progress)
    for line in summary_lines(result):
        print(line)
    print(f"written to {args.out or args.run / 'eval'} (eval.json, success.png, episodes.gif)")
    return 0
