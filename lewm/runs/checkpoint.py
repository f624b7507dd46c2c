"""Checkpoints written atomically (temp file, fsync, rename) and read back with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lewm.errors import LewmError, first_line
from lewm.utils.io import atomic_write

REQUIRED_KEYS = ("model", "step", "config")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` with torch.save so that `path` is either the old file or the complete new one."""
    atomic_write(Path(path), lambda stream: torch.save(state, stream))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; a missing, truncated or foreign file is a LewmError."""
    path = Path(path)
    if not path.is_file():
        raise LewmError(f"{path}: checkpoint does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # a corrupt file can fail anywhere in the unpickler (IndexError, KeyError ...)
        raise LewmError(f"{path}: corrupt or unreadable checkpoint ({first_line(error)})") from error
    if not isinstance(state, dict):
        raise LewmError(f"{path}: not a lewm checkpoint (holds a {type(state).__name__}, expected a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise LewmError(f"{path}: not a lewm checkpoint (missing key {missing[0]!r})")
    return state
