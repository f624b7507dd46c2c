"""What both benchmarks share: the device set-up line they print, and waiting for queued GPU work."""

from __future__ import annotations

import os
import platform

import torch


def sync(device: torch.device) -> None:
    """Wait for queued CUDA kernels (timings must include them); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_name() -> str:
    """The CPU's model name and core count (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        models = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    except OSError:
        models = []
    return f"{models[0] if models else platform.processor() or 'cpu'}, {os.cpu_count()} cores"


def setup_device(device_name: str, threads: int | None) -> tuple[torch.device, str]:
    """Apply --threads, print what runs the benchmark, and return the device and the card or CPU name."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    return device, name
