"""pyplot on the file-only Agg backend: lewm writes PNGs and never opens a window (and must work without a
display, on servers and in CI). Imported lazily so that commands that plot nothing never pay for matplotlib."""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """`matplotlib.pyplot`, with the Agg backend selected first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
