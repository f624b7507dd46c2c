"""The training loop: AdamW, warmup + cosine, grad clipping, bf16 on CUDA, DDP, atomic resumable checkpoints.

`train(config)` runs a whole job in this process; under `torchrun` every rank calls it and rank 0 alone writes
the run directory:

    RUN_DIR/config.yaml          resolved config (model sizes, action_dim read from the data, seeds ...)
    RUN_DIR/normalization.json   per-column mean/std of the training episodes
    RUN_DIR/checkpoints/last.pt  model, optimiser, scheduler, step, RNG states (atomic: temp file + rename)
    RUN_DIR/metrics.jsonl        one JSON line per logged step (train) and per validation (val)
    RUN_DIR/plots/loss.png       loss terms and learning rate against the step
    RUN_DIR/plots/diagnostics.png  effective rank, per-dimension std and temporal straightness against the step

The run directory appears only once the data and the model are known to be good, and a run that fails before
its first step removes the directory it created. Plots are redrawn at validations (at most every PLOT_EVERY_S
seconds) and at the end, so a long run can be watched.

Resuming (`resume=True`) restores everything in last.pt and replays the data order from the same seed, so an
interrupted run ends with the same parameters as an uninterrupted one. SIGINT/SIGTERM stop the loop at the next
step boundary and write a checkpoint first.

Reading order: `train` -> `Trainer.__init__` (checkpoint, data, model, run directory) -> `Trainer.run` (the loop:
`train_step`, `log_train`, `validate`, `save`).
"""

from __future__ import annotations

import math
import random
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from lewm.config import TrainConfig, to_dict
from lewm.data import ClipDataset, EpisodeFile
from lewm.errors import LewmError
from lewm.model import LeWM
from lewm.objectives import LeWMObjective, PLDMObjective
from lewm.runs import load_checkpoint, save_checkpoint, write_run_files
from lewm.training.data import TrainingData, load_training_data, make_loader, read_clips
from lewm.training.diagnostics import collapse_diagnostics, episode_straightness, temporal_straightness
from lewm.training.distributed import (
    DistInfo,
    average_gradients,
    mean_over_ranks,
    setup_distributed,
    teardown_distributed,
)
from lewm.training.metrics import MetricsLog, plot_metrics

VAL_STRAIGHTNESS_EPISODES = 16
"""Validation episodes whose whole-episode straightness is logged at every validation (cheap, and the curve
exists even when clips are too short, as with history 1)."""

PLOT_EVERY_S = 30.0
"""Least seconds between two redraws of the plots at validations: drawing takes about half a second, a lot for a
tiny run validating every few seconds and nothing for a real one validating every few minutes."""

RANK_SEED_STRIDE = 7919
"""Rank r draws dropout masks from seed + r * RANK_SEED_STRIDE (different masks per rank, reproducible)."""


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


def train(config: TrainConfig, stop_at_step: int | None = None) -> TrainResult:
    """Train LeWM as `config` says; `stop_at_step` ends early (with a checkpoint) as a crash would, for tests."""
    config.validate()
    info = setup_distributed(config.device)
    try:
        if config.threads is not None:
            torch.set_num_threads(config.threads)
        return Trainer(config, info).run(stop_at_step)
    finally:
        teardown_distributed()


# --------------------------------------------------------------------------------------------------------------
# Small pieces: schedule, seeds, signals, precision
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# Set-up: checkpoint, model, optimiser (the data: lewm.training.data)
# --------------------------------------------------------------------------------------------------------------

def _find_checkpoint(config: TrainConfig) -> tuple[Path, dict[str, Any] | None]:
    """The run directory and the checkpoint to resume from (None for a fresh run). Creates nothing: the run
    directory appears only once the data and the model are known to be good."""
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
    return run_dir, None


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


def build_model(config: TrainConfig, device: torch.device) -> tuple[LeWM, torch.nn.Module]:
    """The model and the objective (PLDM's has an inverse-dynamics head with parameters), initialised from
    config.seed: every rank builds the same weights."""
    _seed_everything(config.seed)
    return LeWM(config.model).to(device), build_objective(config).to(device)


def _build_optimizer(config: TrainConfig, parameters: list[torch.nn.Parameter], data: TrainingData,
                     device: torch.device) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (the fused kernel on CUDA and whenever the step is compiled) with warmup + cosine decay."""
    fused = device.type == "cuda" or config.compile
    optimizer = torch.optim.AdamW(parameters, lr=config.optim.lr, weight_decay=config.optim.weight_decay,
                                  fused=fused or None)
    total, warmup = data.total_steps, data.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, total, warmup))
    return optimizer, scheduler


def _distribute(model: LeWM, config: TrainConfig, info: DistInfo) -> torch.nn.Module:
    """The network the loop calls: DDP-wrapped across processes (BatchNorm synchronised on CUDA when
    sync_batchnorm; on CPU it stays per rank), compiled when config.compile."""
    network: torch.nn.Module = model
    if info.distributed:
        if config.sync_batchnorm and info.device.type == "cuda":
            network = torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)
        network = DistributedDataParallel(network, device_ids=[info.device] if info.device.type == "cuda" else None)
    if config.compile:
        network = torch.compile(network)
    return network


def _first_missing_ancestor(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet (what mkdir(parents=True) creates)."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


# --------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def _validate(model: torch.nn.Module, objective: torch.nn.Module, dataset: ClipDataset | None, batch: int,
              config: TrainConfig, info: DistInfo) -> dict[str, float]:
    """Mean loss terms over at most max_val_batches validation batches, in eval mode, with fixed SIGReg
    directions, and the temporal straightness of up to VAL_STRAIGHTNESS_EPISODES whole validation episodes;
    averaged over ranks. Empty without validation clips."""
    if dataset is None:
        return {}
    per_rank = min(batch, len(dataset) // info.world_size)
    if per_rank < 2:
        return {}
    was_training = model.training
    model.eval()
    try:
        means = _validation_losses(model, objective, dataset, per_rank, config, info)
        if means:
            means.update(_validation_straightness(model, dataset, config, info.device))
    finally:
        model.train(was_training)
    return mean_over_ranks(means, info) if means else {}


def _validation_losses(model: torch.nn.Module, objective: torch.nn.Module, dataset: ClipDataset, batch: int,
                       config: TrainConfig, info: DistInfo) -> dict[str, float]:
    """Each loss term averaged over this rank's share of the first max_val_batches validation batches."""
    sampler = DistributedSampler(dataset, info.world_size, info.rank, shuffle=False, drop_last=True)
    loader = make_loader(dataset, sampler, batch, config, 0, info.device)
    totals: dict[str, float] = {}
    count = 0
    for index, clip in enumerate(read_clips(islice(loader, config.max_val_batches), dataset.path, info.device)):
        with _autocast(config, info.device):
            emb, pred = model(clip["pixels"], clip["action"])
        terms = objective(emb, pred, seed=_sigreg_seed(config.seed, index), actions=clip["action"])
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + float(value)
        count += 1
    return {key: value / count for key, value in totals.items()} if count else {}


def _validation_straightness(model: torch.nn.Module, dataset: ClipDataset, config: TrainConfig,
                             device: torch.device) -> dict[str, float]:
    """{"straightness": mean over whole validation episodes}, or {} when every one is too short."""
    with EpisodeFile(config.data_path, pixels_key=config.data.pixels_key, action_key=config.data.action_key) as file:
        episodes = dataset.episodes[:VAL_STRAIGHTNESS_EPISODES]
        with _autocast(config, device):
            values = episode_straightness(model, file, episodes, config.model.frameskip, config.data.pixels_key,
                                          device)
    return {"straightness": float(np.mean(values))} if values else {}


# --------------------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------------------

class Trainer:
    """One training job on this rank. The constructor checks the checkpoint, the data and the model, then
    (rank 0) writes the run directory; `run` trains."""

    def __init__(self, config: TrainConfig, info: DistInfo) -> None:
        self.config, self.info = config, info
        self.run_dir, checkpoint = _find_checkpoint(config)
        self.data = load_training_data(config, info, checkpoint)
        self.model, self.objective = build_model(config, info.device)
        self.head = list(self.objective.parameters())  # PLDM's inverse-dynamics head: outside DDP's reducer
        self.trainable = list(self.model.parameters()) + self.head
        self.optimizer, self.scheduler = _build_optimizer(config, self.trainable, self.data, info.device)
        self.step = 0
        self.elapsed_before = 0.0  # training seconds of earlier sessions of this run (resume)
        self._restore(checkpoint)
        self.network = _distribute(self.model, config, info)
        self.created: Path | None = None  # the directory this call created (removed if no step is trained)
        self.log = self._open_run_dir(resumed=checkpoint is not None)
        self.result = TrainResult(run_dir=self.run_dir, step=self.step, total_steps=self.data.total_steps)

    def _restore(self, checkpoint: dict[str, Any] | None) -> None:
        """Load the checkpoint's state (if any) and seed this rank's RNG streams: a resumed run continues each
        rank's stream where it stopped (or, run with another number of processes, reseeds from the step)."""
        if checkpoint is None:
            _seed_everything(self.config.seed + RANK_SEED_STRIDE * self.info.rank)
            return
        self.model.load_state_dict(checkpoint["model"])
        self.objective.load_state_dict(checkpoint.get("objective", {}))
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.step = int(checkpoint["step"])
        self.elapsed_before = float(checkpoint.get("elapsed_s", 0.0))
        rng_states = checkpoint.get("rng", [])
        if len(rng_states) == self.info.world_size:
            _set_rng_state(rng_states[self.info.rank])
        else:
            _seed_everything(self.config.seed + RANK_SEED_STRIDE * self.info.rank + self.step)

    def _open_run_dir(self, resumed: bool) -> MetricsLog | None:
        """Rank 0: create the run directory, write config.yaml and normalization.json, and open metrics.jsonl
        (on resume, trimmed back to the checkpoint's step). Other ranks write nothing."""
        if not self.info.is_main:
            return None
        self.created = _first_missing_ancestor(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_run_files(self.run_dir, self.config, self.data.stats)
        return MetricsLog(self.run_dir / "metrics.jsonl", resume_step=self.step if resumed else None)

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self, stop_at_step: int | None = None) -> TrainResult:
        """Train to total_steps, or until `stop_at_step` or a signal; log, validate and checkpoint on schedule."""
        self._start_session()
        stop = False
        with self._removed_if_untrained(), _stop_on_signals() as signals, self.progress:
            for clip in self.data.batches(self.step, self.config, self.info.device):
                terms, emb, grad_norm = self.train_step(clip)
                self.progress.update(1)
                if self._due(self.config.log_every):
                    self.log_train(terms, emb, grad_norm)
                epoch_end = self.step % self.data.steps_per_epoch == 0
                if epoch_end or self._due(self.config.val_every):
                    self.validate()
                stop = self._stop_requested(signals, stop_at_step)
                if stop or epoch_end or self._due(self.config.checkpoint_every):
                    self.save()
                if stop:
                    break
        return self._finish(stopped=stop, stop_at_step=stop_at_step)

    def _start_session(self) -> None:
        """Start this session's clocks (throughput, elapsed time, plots) and the progress bar."""
        self.session_start = self.window_start = self.last_plot = time.perf_counter()
        self.window_start_step = self.step
        self.progress = tqdm(total=self.data.total_steps, initial=self.step, desc="train", unit="step",
                             dynamic_ncols=True, disable=not (self.info.is_main and self.config.progress))
        self.network.train()

    def _due(self, every: int | None) -> bool:
        """Whether this step is a multiple of `every` (None: never) or the last step of the schedule."""
        return self.step == self.data.total_steps or (every is not None and self.step % every == 0)

    def train_step(self, clip: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor,
                                                                  torch.Tensor]:
        """One optimiser step on this rank's batch; returns the loss terms, the (B, T, D) embeddings and the
        gradient norm before clipping, for logging."""
        with _autocast(self.config, self.info.device):
            emb, pred = self.network(clip["pixels"], clip["action"])
        terms = self.objective(emb, pred, seed=_sigreg_seed(self.config.seed, self.step), actions=clip["action"])
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()  # DDP averages the model's gradients over ranks here
        if self.info.distributed and self.head:
            average_gradients(self.head, self.info.world_size)  # the objective's head, which DDP does not wrap
        grad_norm = (torch.nn.utils.clip_grad_norm_(self.trainable, self.config.optim.grad_clip)
                     if self.config.optim.grad_clip > 0 else torch.zeros(()))
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return terms, emb, grad_norm

    def _finish(self, stopped: bool, stop_at_step: int | None) -> TrainResult:
        """The result; rank 0 draws the final plots and, after a signal, says how to continue."""
        self.result.step = self.step
        self.result.stopped_early = stopped and self.step < self.data.total_steps
        if self.info.is_main:
            self.plot()
            if self.result.stopped_early and stop_at_step is None:
                print(f"stopped at step {self.step}/{self.data.total_steps}; "
                      f"continue with --resume --out {self.run_dir}")
        return self.result

    def _stop_requested(self, signals: dict[str, bool], stop_at_step: int | None) -> bool:
        """Whether to stop after this step, the same answer on every rank. A signal may reach one process only
        (or reach them at different steps), so under DDP the ranks agree on it at log steps, where they meet
        anyway, instead of paying for an all-reduce every step."""
        stop = stop_at_step is not None and self.step >= stop_at_step
        if not self.info.distributed:
            return stop or signals["stop"]
        if self.step % self.config.log_every == 0:
            flag = torch.tensor([float(signals["stop"])], device=self.info.device)
            dist.all_reduce(flag)
            return stop or bool(flag.item())
        return stop

    @contextmanager
    def _removed_if_untrained(self) -> Iterator[None]:
        """Remove the run directory this call created when training fails before its first step (a corrupt
        chunk of the data file is only found out when its pixels are read): no empty run is left behind. A
        directory that existed before, or a run that trained a step, is left as it is."""
        start = self.step
        try:
            yield
        except BaseException:
            if self.created is not None and self.step == start:
                shutil.rmtree(self.created, ignore_errors=True)
            raise

    # -- logging, validation, plots, checkpoints --------------------------------------------------------------

    def log_train(self, terms: dict[str, torch.Tensor], emb: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Average this step's losses and diagnostics over ranks; rank 0 appends a train row to metrics.jsonl."""
        values = {key: float(value.detach()) for key, value in terms.items()}
        values["grad_norm"] = float(grad_norm)
        values.update(collapse_diagnostics(emb.detach().flatten(0, 1)))  # (B*T, D)
        straight = temporal_straightness(emb.detach())  # over the clip's T frames
        if straight is not None:
            values["straightness"] = straight
        values = mean_over_ranks(values, self.info)
        now = time.perf_counter()
        frames = self.config.optim.batch_size * self.data.train_set.num_frames * (self.step - self.window_start_step)
        row = {"split": "train", "step": self.step, "epoch": self.step / self.data.steps_per_epoch,
               "lr": self.scheduler.get_last_lr()[0], **values,
               "frames_per_s": frames / max(now - self.window_start, 1e-9),
               "elapsed_s": self._elapsed()}
        self.window_start, self.window_start_step = time.perf_counter(), self.step
        self.result.train_metrics = values
        self.progress.set_postfix({name: f"{values[name]:.4f}" for name in ("loss", "pred_loss", "sigreg")
                                   if name in values})
        if self.log is not None:
            self.log.write(row)

    def validate(self) -> None:
        """Validation metrics at this step (a val row when there are any); rank 0 then redraws the plots, at
        most every PLOT_EVERY_S seconds."""
        self.result.val_metrics = _validate(self.model, self.objective, self.data.val_set, self.data.per_rank_batch,
                                            self.config, self.info)
        if self.log is not None and self.result.val_metrics:
            self.log.write({"split": "val", "step": self.step, "epoch": self.step / self.data.steps_per_epoch,
                            **self.result.val_metrics})
        if self.info.is_main and time.perf_counter() - self.last_plot >= PLOT_EVERY_S:
            self.plot()

    def plot(self) -> None:
        """Redraw plots/loss.png and plots/diagnostics.png from metrics.jsonl (each file replaced atomically)."""
        plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "plots")
        self.last_plot = time.perf_counter()

    def save(self) -> None:
        """Write checkpoints/last.pt (and step_N.pt when kept) from rank 0, with every rank's RNG state so that
        a resumed run continues each rank's dropout stream. A collective: every rank calls it."""
        states = [_rng_state()]
        if self.info.distributed:
            states = [None] * self.info.world_size
            dist.all_gather_object(states, _rng_state())
        if not self.info.is_main:
            return
        state = {
            "model": self.model.state_dict(), "objective": self.objective.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "step": self.step, "config": to_dict(self.config), "elapsed_s": self._elapsed(),
            "stats": self.data.stats.to_dict(), "rng": states,
        }
        save_checkpoint(self.run_dir / "checkpoints" / "last.pt", state)
        if self.config.keep_step_checkpoints:
            save_checkpoint(self.run_dir / "checkpoints" / f"step_{self.step:07d}.pt", state)

    def _elapsed(self) -> float:
        """Training seconds of this run over all its sessions (resumes included)."""
        return self.elapsed_before + time.perf_counter() - self.session_start
