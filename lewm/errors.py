"""The one exception type for mistakes a user can fix (bad file, bad value, missing run).

The command line prints a `LewmError` as a single line and exits with status 2; any other exception is a bug
and keeps its traceback.
"""


class LewmError(Exception):
    """A user-facing error whose message names the file, field or value that is wrong."""


def first_line(error: BaseException) -> str:
    """The first line of an underlying error's message (its class name when it has none), to quote inside a
    one-line `LewmError`."""
    return (str(error).splitlines() or [type(error).__name__])[0]
