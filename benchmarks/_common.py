"""What both benchmarks share: the device set-up line they print, and waiting for queued GPU work."""

from __future__ import annotations

import platform

import torch


def sync(device: torch.device) -> None:
    """Wait for queued CUDA kernels (timings must include them); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def setup_device(device_name: str, threads: int | None) -> tuple[torch.device, str]:
    """Apply --threads, print what runs the benchmark, and return the device and the card or CPU name."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    return device, name
