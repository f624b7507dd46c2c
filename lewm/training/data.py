"""What each rank trains on: the episode file checked against the config, split by episode, normalised and cut
into clips, and the seeded order in which a rank sees them (replayable from any step, for resuming).

Everything here reads and checks; nothing is written, so a run that fails on its data leaves no trace.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, Sampler

from lewm.config import TrainConfig, to_dict
from lewm.data import ClipDataset, EpisodeFile, NormStats, compute_stats, split_episodes
from lewm.errors import LewmError
from lewm.training.distributed import DistInfo

EXTRA_COLUMNS = ("proprio", "state")
"""Float columns whose statistics are stored with the run for planning and probing (when the file has them)."""


@dataclass
class TrainingData:
    """This rank's training and validation clips, their statistics, and the step schedule they imply."""

    train_set: ClipDataset
    val_set: ClipDataset | None
    """None when there is no validation split or every validation episode is shorter than a clip."""
    stats: NormStats
    """Per-column mean/std of the training rows (on resume: the checkpoint's own)."""
    sampler: DistributedSampler
    """This rank's share of each epoch's shuffled clip order (seeded: the same on every run and resume)."""
    per_rank_batch: int
    """optim.batch_size divided over the processes."""
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int

    def batches(self, from_step: int, config: TrainConfig, device: torch.device) -> Iterator[dict[str, Any]]:
        """This rank's batches for steps from_step, from_step + 1, ... up to total_steps, epoch after epoch.

        Each epoch's order depends only on the seed and the epoch, so starting in the middle of one (resuming)
        skips exactly the batches an uninterrupted run would already have seen.
        """
        step = from_step
        while step < self.total_steps:
            epoch, skip = divmod(step, self.steps_per_epoch)
            self.sampler.set_epoch(epoch)
            order = _SkipSampler(self.sampler, skip * self.per_rank_batch)
            loader = make_loader(self.train_set, order, self.per_rank_batch, config, epoch, device)
            for clip in read_clips(loader, self.train_set.path, device):
                yield clip
                step += 1
                if step >= self.total_steps:
                    return


class _SkipSampler(Sampler[int]):
    """The epoch's index order with the first `skip` indices removed (resuming in the middle of an epoch)."""

    def __init__(self, base: DistributedSampler, skip: int) -> None:
        self.base = base
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.base)[self.skip :])

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def load_training_data(config: TrainConfig, info: DistInfo, checkpoint: dict[str, Any] | None = None) -> TrainingData:
    """Check the episode file, split it and plan the schedule for this rank; every data mistake the config or
    the file can hold is a LewmError here, before anything is built or written.

    Sets config.model.action_dim from the file when unset, and makes config.data_path absolute (the run's
    config.yaml must work from any directory).
    """
    if config.data_path is None:
        raise LewmError("config: data_path is not set (pass --data FILE.h5)")
    config.data_path = Path(config.data_path).resolve()
    stats, train_eps, val_eps = _read_episode_file(config, checkpoint)
    clip_args = dict(
        history=config.model.history, num_preds=config.data.num_preds, frameskip=config.model.frameskip,
        stats=stats, pixels_key=config.data.pixels_key, action_key=config.data.action_key,
    )
    train_set = ClipDataset(config.data_path, episodes=train_eps, **clip_args)
    val_set = ClipDataset(config.data_path, episodes=val_eps, allow_empty=True, **clip_args) if len(val_eps) else None
    if val_set is not None and len(val_set) == 0:
        val_set = None  # every validation episode is shorter than a clip
    per_rank_batch = _per_rank_batch(config, info)
    sampler = DistributedSampler(train_set, info.world_size, info.rank, shuffle=True, seed=config.seed,
                                 drop_last=True)
    steps_per_epoch = len(sampler) // per_rank_batch
    if steps_per_epoch == 0:
        raise LewmError(
            f"{config.data_path}: only {len(train_set)} training clips, fewer than optim.batch_size = "
            f"{config.optim.batch_size}; use a smaller batch or more episodes"
        )
    total_steps = config.steps if config.steps is not None else config.epochs * steps_per_epoch
    warmup_steps = max(1, round(config.optim.warmup_fraction * total_steps))
    return TrainingData(train_set, val_set, stats, sampler, per_rank_batch, steps_per_epoch, total_steps,
                        warmup_steps)


def _read_episode_file(config: TrainConfig, checkpoint: dict[str, Any] | None) -> tuple[NormStats, np.ndarray,
                                                                                         np.ndarray]:
    """(stats, train episodes, validation episodes): the file's action size checked against (or copied into)
    the model config, the episodes split by a seeded permutation, and the training rows' statistics."""
    with EpisodeFile(config.data_path, pixels_key=config.data.pixels_key,
                     action_key=config.data.action_key) as episodes:
        if config.model.action_dim is None:
            config.model.action_dim = episodes.action_dim
        elif config.model.action_dim != episodes.action_dim:
            raise LewmError(
                f"{config.data_path}: column {config.data.action_key!r} has {episodes.action_dim} dimensions "
                f"but model.action_dim = {config.model.action_dim}"
            )
        train_eps, val_eps = split_episodes(episodes.num_episodes, config.data.val_fraction, config.seed)
        if checkpoint is not None:
            check_resume_config(config, checkpoint)
            return NormStats.from_dict(checkpoint["stats"]), train_eps, val_eps
        columns = [config.data.action_key] + [c for c in EXTRA_COLUMNS if c in episodes.columns]
        return compute_stats(episodes, columns, rows=episodes.episode_rows(train_eps)), train_eps, val_eps


def check_resume_config(config: TrainConfig, checkpoint: dict[str, Any]) -> None:
    """A resumed run must build the model it saved: any differing model setting is named."""
    saved = checkpoint["config"]["model"]
    current = to_dict(config)["model"]
    for key, value in current.items():
        if key in saved and saved[key] != value and not (key == "action_dim" and value is None):
            raise LewmError(
                f"{Path(config.out) / 'checkpoints' / 'last.pt'}: model.{key} = {value!r} differs from the "
                f"checkpoint's {saved[key]!r}; resume with the run's own config"
            )


def _per_rank_batch(config: TrainConfig, info: DistInfo) -> int:
    """optim.batch_size is the global batch: each of the processes takes an equal share."""
    per_rank = config.optim.batch_size // info.world_size
    if per_rank < 1 or config.optim.batch_size % info.world_size:
        raise LewmError(
            f"config: optim.batch_size = {config.optim.batch_size} must be a multiple of the "
            f"{info.world_size} processes"
        )
    return per_rank


def make_loader(dataset: ClipDataset, sampler: Sampler[int], batch: int, config: TrainConfig, epoch: int,
                device: torch.device) -> DataLoader:
    """A loader over `sampler`'s order with its own seeded generator (so building it leaves the global RNG, which
    drives dropout, untouched); loader processes only on CUDA, where the CPU cores are free to decode."""
    generator = torch.Generator()
    generator.manual_seed(config.seed + epoch)
    workers = config.data.num_workers
    if workers is None:  # CUDA: up to 8 loader processes per GPU process; CPU: the cores are busy training
        workers = 0 if device.type != "cuda" else max(1, min(8, (os.cpu_count() or 2) // max(1, _local_world())))
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
        generator=generator,
    )


def read_clips(loader: Iterable[dict[str, Any]], path: Path, device: torch.device) -> Iterator[dict[str, Any]]:
    """The loader's batches on `device`; a chunk of the file that cannot be read (a corrupt or truncated file is
    only found out when its pixels are read) becomes a one-line LewmError naming the file."""
    try:
        for clip in loader:
            yield {key: value.to(device, non_blocking=True) for key, value in clip.items()}
    except OSError as error:
        lines = str(error).strip().splitlines()  # a loader worker's error ends with the original one
        reason = lines[-1] if lines else type(error).__name__
        raise LewmError(f"{path}: cannot read clips ({reason})") from error


def _local_world() -> int:
    """Processes on this machine under torchrun (LOCAL_WORLD_SIZE), else 1."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
