"""The `lewm` console script: one subcommand per task, each a thin layer over the library."""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Any

from lewm.errors import LewmError

COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("lewm.cli.collect", "simulate episodes with a random or expert policy into an HDF5 episode file"),
    "train": ("lewm.cli.train", "train a LeWM world model on an HDF5 episode file"),
    "eval": ("lewm.cli.eval", "plan towards goals under the paper protocol, beside a random policy"),
    "demo": ("lewm.cli.demo", "collect data, train on the CPU and evaluate, in one command (any environment)"),
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


TYPE_WORDS = {"INT": "an integer", "FLOAT": "a number", "PATH": "a path", "STR": "text", "{None}": "None",
              "{True,False}": "True or False"}
"""tyro metavar part -> what a value of that kind is, for `--steps: 'abc' is not an integer or None`."""


def _given(argv: list[str], flag: str) -> str | None:
    """The value tokens the user gave `flag` (last occurrence; `--flag V ...` or `--flag=V`), quoted."""
    found = None
    for index, token in enumerate(argv):
        name, equals, value = token.partition("=")
        if name.replace("_", "-") != flag:
            continue
        if equals:
            found = [value]
        else:
            found = []
            for value in argv[index + 1 :]:
                if value.startswith("--"):
                    break
                found.append(value)
    return " ".join(repr(value) for value in found) if found else None


def _kind(metavar: str | None) -> str:
    """'{None}|INT' -> 'an integer or None'; '{a,b}' -> 'one of a, b'."""
    words = []
    for part in (metavar or "").split("|"):
        if part in TYPE_WORDS:
            words.append(TYPE_WORDS[part])
        elif part.startswith("{") and part.endswith("}"):
            words.append("one of " + part[1:-1].replace(",", ", "))
        else:
            words.append(part.lower())
    return " or ".join(sorted(words, key=lambda word: word == "None"))


def _names(arguments: list[Any]) -> str:
    """Positional arguments by metavar (SRC), options by flag (--out)."""
    return ", ".join(arg.lowered.metavar if arg.is_positional() else arg.display_name() for arg in arguments)


def tyro_error_line(event: Any, argv: list[str], name: str) -> str:
    """One line for a tyro parse failure (a `tyro._errors` event), naming the option and the value given."""
    from tyro import _errors

    arg = getattr(event, "argument", None)
    flag = arg.display_name() if arg is not None else None
    see = f"see lewm {name} --help"
    if isinstance(event, _errors.MissingArgs):
        missing = _names([context.arg for context in event.missing_arguments])
        return f"{missing}: required, not given ({see})"
    if isinstance(event, _errors.UnrecognizedArgs):
        tokens = " ".join(token if token.startswith("-") else repr(token) for token in event.tokens)
        return f"{tokens}: unrecognized ({see} for the options)"
    if isinstance(event, _errors.InvalidChoice):
        return f"{flag}: {event.value!r} is not one of {', '.join(event.choices)}"
    if isinstance(event, _errors.BadValue) and event.reason == "too_few_values":
        return f"{flag}: expects {_kind(arg.lowered.metavar)}, got no value"
    if isinstance(event, _errors.MutexConflict):
        return f"{event.first_token} and {event.second_token} cannot be given together"
    if isinstance(event, _errors.InstantiationFailure) and flag is not None:
        value = _given(argv, flag)
        if value is not None:
            return f"{flag}: {value} is not {_kind(arg.lowered.metavar)}"
    message = " ".join(str(getattr(event, "message", "")).split()) or type(event).__name__
    return f"{flag + ': ' if flag else ''}invalid command line: {message} ({see})"


def _one_line_tyro_errors(argv: list[str], name: str) -> contextlib.AbstractContextManager:
    """Inside it, every `tyro.cli` call (the command's own, and `parse_train_config`'s) turns a rejected command
    line into a `LewmError` whose one line names the option and the value, instead of tyro's boxed help.

    tyro reports parse failures through its hook `tyro._errors.on_parse_error` (tyro >= 1.0, marked private and
    experimental); without it, tyro's own box is printed (exit status 2 either way)."""
    try:
        from tyro._errors import on_parse_error
    except ImportError:
        return contextlib.nullcontext()

    def hook(event: Any) -> None:
        try:
            line = tyro_error_line(event, argv, name)
        except (AttributeError, TypeError):  # an event of a later tyro shaped otherwise: tyro's own message
            return
        raise LewmError(line)

    return on_parse_error(hook)


def run(argv: list[str]) -> int:
    """Dispatch to a command; a `LewmError` (and a command line tyro rejects) becomes one line on stderr and exit
    status 2."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lewm: error: unknown command {name!r}\n{_usage()}", file=sys.stderr)
        return 2
    try:
        with _one_line_tyro_errors(rest, name):
            return importlib.import_module(COMMANDS[name][0]).main(rest)
    except LewmError as error:
        # a library message that starts with the command's own name ("probe: ...") would read it twice
        print(f"lewm {name}: error: {str(error).removeprefix(f'{name}: ')}", file=sys.stderr)
        return 2


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
