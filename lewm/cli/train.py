"""`lewm train` / `python -m lewm.train`: preset -> command-line overrides -> `lewm.training.train`."""

from __future__ import annotations

import argparse
from pathlib import Path

import tyro

from lewm.config import PRESETS, TrainConfig, load_train_config, preset
from lewm.errors import LewmError

USAGE = ("lewm train --data FILE.h5 --out RUN_DIR [--preset paper|cpu|tiny] [--steps N | --epochs N] "
         "[--objective lewm|pldm] [--resume]")


def _objective_shorthand(argv: list[str]) -> list[str]:
    """`--objective pldm` (and `--objective=pldm`) is short for `--objective.kind pldm`."""
    out = []
    for index, arg in enumerate(argv):
        if arg.startswith("--objective="):
            out.append("--objective.kind=" + arg.split("=", 1)[1])
        elif arg == "--objective" and index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            out.append("--objective.kind")
        else:
            out.append(arg)
    return out


def parse_train_config(argv: list[str]) -> TrainConfig:
    """Start from the preset (or, with --resume, the run's own config.yaml) and apply every flag on top."""
    argv = _objective_shorthand(argv)
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--preset", default=None)
    first.add_argument("--out", default=None)
    first.add_argument("--resume", action="store_true")
    known, _ = first.parse_known_args(argv)
    has_steps = any(arg == "--steps" or arg.startswith("--steps=") for arg in argv)
    has_epochs = any(arg == "--epochs" or arg.startswith("--epochs=") for arg in argv)
    if has_steps and has_epochs:
        raise LewmError("train: pass --steps or --epochs, not both")
    saved = Path(known.out) / "config.yaml" if known.out else None
    if known.resume and saved is not None and saved.is_file() and known.preset is None:
        base = load_train_config(saved)
    else:
        name = known.preset or "paper"
        if name not in PRESETS:
            raise LewmError(f"train: --preset {name!r} is unknown: choose one of {', '.join(PRESETS)}")
        base = preset(name)
    if has_epochs:
        base.steps = None  # --epochs N means "train for N epochs", even when the preset counts steps
    base.resume = False  # only the flag below sets it
    return tyro.cli(TrainConfig, default=base, args=argv, prog="lewm train", description=USAGE)


def main(argv: list[str]) -> int:
    config = parse_train_config(argv)
    from lewm.training import train  # after parsing, so --help stays quick

    result = train(config)
    if result.train_metrics:
        terms = ", ".join(f"{key} {value:.4f}" for key, value in result.train_metrics.items())
        print(f"step {result.step}/{result.total_steps}: {terms}")
    print(f"run saved in {result.run_dir}")
    return 0
