"""The one place a device name becomes a `torch.device`: every command defaults to 'auto' (CUDA when available)."""

from __future__ import annotations

import torch

from lewm.errors import LewmError

DEVICE_HELP = "'auto' (CUDA when available, else the CPU), 'cpu', 'cuda' or 'cuda:N'"
"""What a device name may be, for help texts and error messages."""


def resolve_device(name: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> this process's GPU when CUDA is available, else the CPU; 'cpu', 'cuda' (GPU `local_rank`) and
    'cuda:N' are checked against this machine. A `torch.device` passes through unchanged."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise LewmError(f"device = {name!r} is invalid: use {DEVICE_HELP}")
    if not torch.cuda.is_available():
        raise LewmError(f"device = {name!r} but CUDA is not available on this machine (use 'cpu' or 'auto')")
    device = torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise LewmError(f"device = {name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device
