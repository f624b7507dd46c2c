"""The `lewm` console script: one subcommand per task, each a thin layer over the library."""

from __future__ import annotations

import sys
from collections.abc import Callable

from lewm.errors import LewmError


def _train(argv: list[str]) -> int:
    from lewm.cli.train import main

    return main(argv)


def _eval(argv: list[str]) -> int:
    from lewm.cli.eval import main

    return main(argv)


def _demo(argv: list[str]) -> int:
    from lewm.cli.demo import main

    return main(argv)


def _collect(argv: list[str]) -> int:
    from lewm.cli.collect import main

    return main(argv)


def _params(argv: list[str]) -> int:
    from lewm.cli.params import main

    return main(argv)


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (_train, "train a LeWM world model on an HDF5 episode file"),
    "eval": (_eval, "plan towards goals under the paper protocol, beside a random policy"),
    "demo": (_demo, "collect Two-Room data, train on the CPU and evaluate, in one command"),
    "collect": (_collect, "simulate episodes with a random or expert policy into an HDF5 episode file"),
    "params": (_params, "print a preset's parameter counts per component"),
}


def _usage() -> str:
    lines = ["usage: lewm COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in COMMANDS.items()]
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
        return COMMANDS[name][0](rest)
    except LewmError as error:
        print(f"lewm {name}: error: {error}", file=sys.stderr)
        return 2


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
