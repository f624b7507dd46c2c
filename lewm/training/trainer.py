"""The training loop: AdamW, warmup + cosine, grad clipping, bf16 on CUDA, DDP, atomic resumable checkpoints.

One function, `train(config)`, runs a whole job in this process; under `torchrun` every rank calls it and rank 0
alone writes the run directory:

    RUN_DIR/config.yaml          resolved config (model sizes, action_dim read from the data, seeds ...)
    RUN_DIR/normalization.json   per-column mean/std of the training episodes
    RUN_DIR/checkpoints/last.pt  model, optimiser, scheduler, step, RNG states (atomic: temp file + rename)
    RUN_DIR/metrics.jsonl        one JSON line per logged step (train) and per validation (val)
    RUN_DIR/plots/loss.png       loss terms and learning rate against the step
    RUN_DIR/plots/diagnostics.png  effective rank, per-dimension std and temporal straightness against the step

Resuming (`resume=True`) restores everything in last.pt and replays the data order from the same seed, so an
interrupted run ends with the same parameters as an uninterrupted one. SIGINT/SIGTERM stop the loop at the next
step boundary and write a checkpoint first.
"""

from __future__ import annotations

import math
import os
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm.auto import tqdm

from lewm.config import TrainConfig, to_dict
from lewm.data import ClipDataset, EpisodeFile, NormStats, compute_stats, split_episodes
from lewm.errors import LewmError
from lewm.model import LeWM
from lewm.objectives import LeWMObjective, PLDMObjective
from lewm.runs import load_checkpoint, save_checkpoint, write_run_files
from lewm.training.diagnostics import collapse_diagnostics, episode_straightness, temporal_straightness
from lewm.training.distributed import DistInfo, mean_over_ranks, setup_distributed, teardown_distributed
from lewm.training.metrics import MetricsLog, plot_metrics

VAL_STRAIGHTNESS_EPISODES = 16
"""Validation episodes whose whole-episode straightness is logged at every validation (cheap, and the curve
exists even when clips are too short, as with history 1)."""

EXTRA_COLUMNS = ("proprio", "state")
"""Float columns whose statistics are stored with the run for planning and probing (when the file has them)."""


@dataclass
class TrainResult:
    """What a finished (or stopped) `train` call leaves behind."""

    run_dir: Path
    """The run directory."""
    step: int
    """Optimiser steps done in total."""
    total_steps: int
    """Steps the schedule was planned for."""
    train_metrics: dict[str, float] = field(default_factory=dict)
    """The last logged training metrics (averaged over ranks)."""
    val_metrics: dict[str, float] = field(default_factory=dict)
    """The last validation metrics (empty when there is no validation split)."""
    stopped_early: bool = False
    """True when training stopped before total_steps (signal or stop_at_step)."""


class _SkipSampler(Sampler[int]):
    """The epoch's index order with the first `skip` indices removed (resuming in the middle of an epoch)."""

    def __init__(self, base: DistributedSampler, skip: int) -> None:
        self.base = base
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return iter(list(self.base)[self.skip :])

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int) -> float:
    """Learning-rate factor: linear from 0 to 1 over warmup_steps, then cosine down to 0 at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _sigreg_seed(seed: int, step: int) -> int:
    """This step's SIGReg direction seed: new every step, the same on every rank, reproducible on resume."""
    return (seed * 1_000_003 + step) % (2**63 - 1)


@contextmanager
def _stop_on_signals() -> Iterator[dict[str, bool]]:
    """Turn SIGINT/SIGTERM into a flag the loop checks between steps, so a checkpoint is written first."""
    flag = {"stop": False}

    def handler(signum: int, frame: Any) -> None:
        flag["stop"] = True

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _autocast(config: TrainConfig, device: torch.device):
    """bf16 autocast on CUDA by default ('auto'), on any device when precision='bf16'; else nothing."""
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()


def _prepare_run_dir(config: TrainConfig, info: DistInfo) -> tuple[Path, dict[str, Any] | None]:
    """Check the output folder and return the checkpoint to resume from (or None for a fresh run)."""
    if config.out is None:
        raise LewmError("config: out is not set (pass --out RUN_DIR)")
    run_dir = Path(config.out)
    last = run_dir / "checkpoints" / "last.pt"
    if config.resume:
        if not last.exists():
            raise LewmError(f"{last}: nothing to resume (no checkpoint); drop --resume to start a new run")
        return run_dir, load_checkpoint(last)
    if last.exists():
        raise LewmError(f"{run_dir}: already holds a run (checkpoints/last.pt); pass --resume or another --out")
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, None


def _check_resume_config(config: TrainConfig, checkpoint: dict[str, Any], path: Path) -> None:
    saved = checkpoint["config"]["model"]
    current = to_dict(config)["model"]
    for key, value in current.items():
        if key in saved and saved[key] != value and not (key == "action_dim" and value is None):
            raise LewmError(
                f"{path}: model.{key} = {value!r} differs from the checkpoint's {saved[key]!r}; "
                "resume with the run's own config"
            )


def _loader(dataset: ClipDataset, sampler: Sampler[int], batch: int, config: TrainConfig, epoch: int,
            device: torch.device) -> DataLoader:
    generator = torch.Generator()
    generator.manual_seed(config.seed + epoch)  # keeps the global RNG (dropout) untouched by loader set-up
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


def _local_world() -> int:
    """Processes on this machine under torchrun (LOCAL_WORLD_SIZE), else 1."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


@torch.no_grad()
def _validate(model: torch.nn.Module, objective: torch.nn.Module, dataset: ClipDataset | None, batch: int,
              config: TrainConfig, info: DistInfo) -> dict[str, float]:
    """Mean loss terms over at most max_val_batches validation batches, in eval mode, fixed SIGReg directions,
    and the temporal straightness of up to VAL_STRAIGHTNESS_EPISODES whole validation episodes."""
    if dataset is None:
        return {}
    per_rank = min(batch, len(dataset) // info.world_size)
    if per_rank < 2:
        return {}
    sampler = DistributedSampler(dataset, info.world_size, info.rank, shuffle=False, drop_last=True)
    loader = _loader(dataset, sampler, per_rank, config, 0, info.device)
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    count = 0
    for index, clip in enumerate(loader):
        if index >= config.max_val_batches:
            break
        clip = _to_device(clip, info.device)
        with _autocast(config, info.device):
            emb, pred = model(clip["pixels"], clip["action"])
        terms = objective(emb, pred, seed=_sigreg_seed(config.seed, index), actions=clip["action"])
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + float(value)
        count += 1
    if count == 0:
        model.train(was_training)
        return {}
    means = {key: value / count for key, value in totals.items()}
    with EpisodeFile(config.data_path, pixels_key=config.data.pixels_key, action_key=config.data.action_key) as file:
        episodes = dataset.episodes[:VAL_STRAIGHTNESS_EPISODES]
        with _autocast(config, info.device):
            values = episode_straightness(model, file, episodes, config.model.frameskip, config.data.pixels_key,
                                          info.device)
    if values:
        means["straightness"] = float(np.mean(values))
    model.train(was_training)
    return mean_over_ranks(means, info)


def build_objective(config: TrainConfig) -> torch.nn.Module:
    """The objective `config.objective.kind` names, with the run's settings."""
    settings = config.objective
    if settings.kind == "pldm":
        pldm = settings.pldm
        return PLDMObjective(
            variance_weight=pldm.variance, covariance_weight=pldm.covariance,
            time_similarity_weight=pldm.time_similarity, time_variance_weight=pldm.time_variance,
            time_covariance_weight=pldm.time_covariance, inverse_dynamics_weight=pldm.inverse_dynamics,
            embed_dim=config.model.embed_dim, action_block_dim=config.model.action_block_dim,
            num_preds=config.data.num_preds,
        )
    return LeWMObjective(
        sigreg_weight=settings.sigreg_weight, num_projections=settings.num_projections,
        num_knots=settings.num_knots, knot_max=settings.knot_max, num_preds=config.data.num_preds,
    )


def _average_gradients(parameters: list[torch.nn.Parameter], world_size: int) -> None:
    """All-reduce and average the gradients of parameters DDP does not manage."""
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size


def train(config: TrainConfig, stop_at_step: int | None = None) -> TrainResult:
    """Train LeWM as `config` says; `stop_at_step` ends early (with a checkpoint) as a crash would, for tests."""
    config.validate()
    info = setup_distributed(config.device)
    try:
        return _train(config, info, stop_at_step)
    finally:
        teardown_distributed()


def _train(config: TrainConfig, info: DistInfo, stop_at_step: int | None) -> TrainResult:
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    run_dir, checkpoint = _prepare_run_dir(config, info)
    if config.data_path is None:
        raise LewmError("config: data_path is not set (pass --data FILE.h5)")
    config.data_path = Path(config.data_path).resolve()  # config.yaml must work from any directory

    # --- data: validate the file, split by episode, normalisation statistics of the training rows ---
    episodes = EpisodeFile(config.data_path, pixels_key=config.data.pixels_key, action_key=config.data.action_key)
    if config.model.action_dim is None:
        config.model.action_dim = episodes.action_dim
    elif config.model.action_dim != episodes.action_dim:
        raise LewmError(
            f"{config.data_path}: column {config.data.action_key!r} has {episodes.action_dim} dimensions "
            f"but model.action_dim = {config.model.action_dim}"
        )
    train_eps, val_eps = split_episodes(episodes.num_episodes, config.data.val_fraction, config.seed)
    if checkpoint is not None:
        _check_resume_config(config, checkpoint, run_dir / "checkpoints" / "last.pt")
        stats = NormStats.from_dict(checkpoint["stats"])
    else:
        rows = episodes.episode_rows(train_eps)
        columns = [config.data.action_key] + [c for c in EXTRA_COLUMNS if c in episodes.columns]
        stats = compute_stats(episodes, columns, rows=rows)
    episodes.close()
    clip_args = dict(
        history=config.model.history, num_preds=config.data.num_preds, frameskip=config.model.frameskip,
        stats=stats, pixels_key=config.data.pixels_key, action_key=config.data.action_key,
    )
    train_set = ClipDataset(config.data_path, episodes=train_eps, **clip_args)
    val_set = ClipDataset(config.data_path, episodes=val_eps, allow_empty=True, **clip_args) if len(val_eps) else None
    if val_set is not None and len(val_set) == 0:
        val_set = None  # every validation episode is shorter than a clip

    per_rank_batch = config.optim.batch_size // info.world_size
    if per_rank_batch < 1 or config.optim.batch_size % info.world_size:
        raise LewmError(
            f"config: optim.batch_size = {config.optim.batch_size} must be a multiple of the "
            f"{info.world_size} processes"
        )
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

    # --- model, objective, optimiser, schedule ---
    _seed_everything(config.seed)  # same initial weights on every rank
    model = LeWM(config.model).to(info.device)
    objective = build_objective(config).to(info.device)
    trainable = list(model.parameters()) + list(objective.parameters())  # PLDM's inverse-dynamics head, if any
    # the fused AdamW kernel (one kernel for every parameter) on CUDA and whenever the step is compiled
    fused = info.device.type == "cuda" or config.compile
    optimizer = torch.optim.AdamW(trainable, lr=config.optim.lr, weight_decay=config.optim.weight_decay,
                                  fused=fused or None)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, total_steps, warmup_steps)
    )
    step = 0
    elapsed_before = 0.0  # training seconds of earlier sessions of this run (resume)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        objective.load_state_dict(checkpoint.get("objective", {}))
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        step = int(checkpoint["step"])
        elapsed_before = float(checkpoint.get("elapsed_s", 0.0))
        rng_states = checkpoint.get("rng", [])
        if len(rng_states) == info.world_size:
            _set_rng_state(rng_states[info.rank])
        else:
            _seed_everything(config.seed + 7919 * info.rank + step)
    else:
        _seed_everything(config.seed + 7919 * info.rank)  # different dropout masks per rank

    network: torch.nn.Module = model
    if info.distributed:
        if config.sync_batchnorm and info.device.type == "cuda":
            network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
        network = DistributedDataParallel(network, device_ids=[info.device] if info.device.type == "cuda" else None)
    if config.compile:
        network = torch.compile(network)

    # --- run directory (rank 0) ---
    log = None
    if info.is_main:
        write_run_files(run_dir, config, stats)
        log = MetricsLog(run_dir / "metrics.jsonl", resume_step=step if checkpoint is not None else None)

    def save(at_step: int) -> None:
        states = [_rng_state()]
        if info.distributed:
            states = [None] * info.world_size
            dist.all_gather_object(states, _rng_state())
        if info.is_main:
            state = {
                "model": model.state_dict(), "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": at_step, "config": to_dict(config),
                "elapsed_s": elapsed_before + time.perf_counter() - session_start,
                "stats": stats.to_dict(), "rng": states,
            }
            save_checkpoint(run_dir / "checkpoints" / "last.pt", state)
            if config.keep_step_checkpoints:
                save_checkpoint(run_dir / "checkpoints" / f"step_{at_step:07d}.pt", state)

    head = list(objective.parameters())
    frames_per_step = config.optim.batch_size * train_set.num_frames
    result = TrainResult(run_dir=run_dir, step=step, total_steps=total_steps)
    progress = tqdm(total=total_steps, initial=step, desc="train", unit="step", dynamic_ncols=True,
                    disable=not (info.is_main and config.progress))
    network.train()
    session_start = window_start = time.perf_counter()
    window_steps = 0
    with _stop_on_signals() as signals:
        while step < total_steps:
            epoch, skip = divmod(step, steps_per_epoch)
            sampler.set_epoch(epoch)
            loader = _loader(train_set, _SkipSampler(sampler, skip * per_rank_batch), per_rank_batch, config,
                             epoch, info.device)
            for clip in loader:
                clip = _to_device(clip, info.device)
                with _autocast(config, info.device):
                    emb, pred = network(clip["pixels"], clip["action"])
                terms = objective(emb, pred, seed=_sigreg_seed(config.seed, step), actions=clip["action"])
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                if info.distributed and head:
                    _average_gradients(head, info.world_size)  # outside DDP's reducer
                grad_norm = (torch.nn.utils.clip_grad_norm_(trainable, config.optim.grad_clip)
                             if config.optim.grad_clip > 0 else torch.zeros(()))
                optimizer.step()
                scheduler.step()
                step += 1
                window_steps += 1
                progress.update(1)

                if step % config.log_every == 0 or step == total_steps:
                    values = {key: float(value.detach()) for key, value in terms.items()}
                    values["grad_norm"] = float(grad_norm)
                    values.update(collapse_diagnostics(emb.detach().flatten(0, 1)))  # (B*T, D)
                    straight = temporal_straightness(emb.detach())  # over the clip's T frames
                    if straight is not None:
                        values["straightness"] = straight
                    values = mean_over_ranks(values, info)
                    elapsed = time.perf_counter() - window_start
                    row = {"split": "train", "step": step, "epoch": step / steps_per_epoch,
                           "lr": scheduler.get_last_lr()[0], **values,
                           "frames_per_s": frames_per_step * window_steps / max(elapsed, 1e-9),
                           "elapsed_s": elapsed_before + time.perf_counter() - session_start}
                    window_start, window_steps = time.perf_counter(), 0
                    result.train_metrics = values
                    progress.set_postfix({name: f"{values[name]:.4f}" for name in ("loss", "pred_loss", "sigreg")
                                          if name in values})
                    if log is not None:
                        log.write(row)
                epoch_end = step % steps_per_epoch == 0
                val_due = config.val_every is not None and step % config.val_every == 0
                if epoch_end or val_due or step == total_steps:
                    result.val_metrics = _validate(model, objective, val_set, per_rank_batch, config, info)
                    if log is not None and result.val_metrics:
                        log.write({"split": "val", "step": step, "epoch": step / steps_per_epoch,
                                   **result.val_metrics})
                stop_now = stop_at_step is not None and step >= stop_at_step  # the same on every rank
                if not info.distributed:
                    stop_now = stop_now or signals["stop"]
                elif step % config.log_every == 0:  # ranks agree on a signal at log steps (no per-step sync)
                    flag = torch.tensor([float(signals["stop"])], device=info.device)
                    dist.all_reduce(flag)
                    stop_now = stop_now or bool(flag.item())
                if step % config.checkpoint_every == 0 or epoch_end or step == total_steps or stop_now:
                    save(step)
                if stop_now or step >= total_steps:
                    break
            if stop_now:
                result.stopped_early = step < total_steps
                break
    progress.close()
    result.step = step
    if info.is_main:
        plot_metrics(run_dir / "metrics.jsonl", run_dir / "plots")
        if result.stopped_early and stop_at_step is None:
            print(f"stopped at step {step}/{total_steps}; continue with --resume --out {run_dir}")
    return result
