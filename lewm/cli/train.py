"""`lewm train` / `python -m lewm.train`: preset -> command-line overrides -> `lewm.training.train`."""

from __future__ import annotations

from lewm.config import parse_train_config


def main(argv: list[str]) -> int:
    config = parse_train_config(argv)
    from lewm.training import train  # after parsing, so --help stays quick

    result = train(config)
    if result.train_metrics:
        terms = ", ".join(f"{key} {value:.4f}" for key, value in result.train_metrics.items())
        print(f"step {result.step}/{result.total_steps}: {terms}")
    print(f"run saved in {result.run_dir}")
    return 0
