"""Process-group setup for multi-process training launched by `torchrun` (PyTorch's own engine).

`torchrun --nproc-per-node N -m lewm.train ...` sets RANK, LOCAL_RANK and WORLD_SIZE; we only read them, pick
the device and start the process group (NCCL on CUDA, gloo on CPU). Without them everything runs as one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lewm.utils.device import resolve_device


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int
    """Global rank (0 writes logs and checkpoints)."""
    local_rank: int
    """Rank on this machine (picks the GPU)."""
    world_size: int
    """Number of processes."""
    device: torch.device
    """Device this process trains on."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device_name: str) -> DistInfo:
    """Join the torchrun job if there is one; otherwise describe a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def teardown_distributed() -> None:
    """Leave the process group cleanly (no-op for one process): every rank's collectives finish first (a
    barrier), which narrows a torch teardown race seen with gloo, where freeing the group while a finished
    all-reduce is still being released on gloo's thread deadlocks on the GIL."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def mean_over_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics across ranks for logging (one small all-reduce)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    packed = torch.tensor([values[key] for key in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(packed)
    packed /= info.world_size
    return dict(zip(keys, packed.tolist(), strict=True))


def average_gradients(parameters: list[torch.nn.Parameter], world_size: int) -> None:
    """Replace each gradient by its mean over the ranks, for parameters DDP does not manage (the objective's own
    head). Parameters without a gradient are skipped; every rank must then skip the same ones, or the
    all-reduces pair up wrongly."""
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size
