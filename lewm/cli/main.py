"""The `lewm` console script: one subcommand per task, each a thin layer over the library."""

from __future__ import annotations

import importlib
import sys

from lewm.errors import LewmError

COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("lewm.cli.collect", "simulate episodes with a random or expert policy into an HDF5 episode file"),
    "train": ("lewm.cli.train", "train a LeWM world model on an HDF5 episode file"),
    "eval": ("lewm.cli.eval", "plan towards goals under the paper protocol, beside a random policy"),
    "demo": ("lewm.cli.demo", "collect data, train on the CPU and evaluate, in one command (two-room, pusht)"),
    "probe": ("lewm.cli.probe", "fit linear and MLP probes from frozen embeddings to physical quantities"),
    "straightness": ("lewm.cli.straightness", "mean cosine of consecutive latent velocities along episodes"),
    "surprise": ("lewm.cli.surprise", "violation of expectation: surprise at a teleport vs a colour change"),
    "lambda-search": ("lewm.cli.lambda_search", "tune lambda by bisection on probe r or planning success"),
    "report": ("lewm.cli.report", "one page (Markdown + HTML) and one printed table comparing runs side by side"),
    "import": ("lewm.cli.import_checkpoint", "an official checkpoint (folder or hf:OWNER/NAME) as a lewm run"),
    "export": ("lewm.cli.export", "a run as an official checkpoint folder (weights.pt + config.json)"),
    "params": ("lewm.cli.params", "print a preset's parameter counts per component"),
}
"""Command name -> (module with `main(argv) -> int`, summary). Modules are imported only when run, so
`lewm --help` and each command's --help stay quick."""


def _usage() -> str:
    lines = ["usage: lewm COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<13} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "run 'lewm COMMAND --help' for a command's options"]
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    """Dispatch to a command; a `LewmError` becomes one line on stderr and exit status 2."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lewm: error: unknown command {name!r}\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return importlib.import_module(COMMANDS[name][0]).main(rest)
    except LewmError as error:
        print(f"lewm {name}: error: {error}", file=sys.stderr)
        return 2


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
