"""Reading a run directory back: the one place that knows where a trained model and its statistics live.

Planning, evaluation and analysis call `load_run(RUN_DIR)` (or `as_run`, which also takes a run already loaded);
they never open checkpoints themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from lewm.config import TrainConfig, from_dict, save_yaml, to_dict
from lewm.data import NormStats
from lewm.errors import LewmError
from lewm.model import LeWM
from lewm.runs.checkpoint import load_checkpoint, save_checkpoint
from lewm.utils.device import resolve_device
from lewm.utils.io import atomic_write_text


@dataclass
class LoadedRun:
    """A trained model ready for planning, with what it was trained on."""

    run_dir: Path
    """The run directory."""
    model: LeWM
    """The model, in eval mode, on the requested device."""
    config: TrainConfig
    """The run's resolved config."""
    stats: NormStats
    """Normalisation statistics of the training data (actions are planned in normalised units)."""
    step: int
    """Optimiser steps the checkpoint was saved at."""


def as_run(run: Path | LoadedRun, device: str | torch.device = "cpu", checkpoint: str = "last.pt") -> LoadedRun:
    """`run` itself when it is already loaded, else `load_run(run, device, checkpoint)`: a caller that holds a
    loaded run (the report) hands it on instead of having every analysis read the checkpoint again."""
    return run if isinstance(run, LoadedRun) else load_run(run, device, checkpoint)


def load_run(run_dir: Path, device: str | torch.device = "cpu", checkpoint: str = "last.pt") -> LoadedRun:
    """Load RUN_DIR/checkpoints/CHECKPOINT (default last.pt) into a `LeWM` in eval mode."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LewmError(f"{run_dir}: run directory does not exist")
    last = run_dir / "checkpoints" / checkpoint
    if not last.is_file():
        raise LewmError(f"{run_dir}: no checkpoint (checkpoints/{checkpoint}); train one first with lewm train")
    device = resolve_device(device)  # 'auto' and explicit names, checked once for every reader
    state = load_checkpoint(last, map_location="cpu")
    config = from_dict(TrainConfig, state["config"], where=str(last))
    model = LeWM(config.model)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return LoadedRun(run_dir=run_dir, model=model, config=config, stats=NormStats.from_dict(state["stats"]),
                     step=int(state["step"]))


def run_data_path(run: LoadedRun, data_path: Path | None = None) -> Path:
    """The episode file an analysis reads: `data_path` when given, else the run's training file (a run imported
    without --data has none, and then the caller must name one)."""
    chosen = data_path or run.config.data_path
    if chosen is None:
        raise LewmError(f"{run.run_dir}: the run records no episode file (it was imported without --data): "
                        "pass --data F.h5")
    return Path(chosen)


def write_run_files(run_dir: Path, config: TrainConfig, stats: NormStats) -> None:
    """RUN_DIR/config.yaml (the resolved config) and RUN_DIR/normalization.json: the readable half of a run."""
    save_yaml(config, Path(run_dir) / "config.yaml")
    atomic_write_text(Path(run_dir) / "normalization.json", json.dumps(stats.to_dict(), indent=1))


def write_model_run(run_dir: Path, model: LeWM, config: TrainConfig, stats: NormStats, step: int = 0,
                    extra: dict[str, Any] | None = None) -> Path:
    """A run directory holding a model that was not trained here (an imported checkpoint): `write_run_files`
    and checkpoints/last.pt with what `load_run` reads (no
    optimiser state, so it cannot be resumed, only evaluated, analysed and exported). Returns the checkpoint."""
    write_run_files(run_dir, config, stats)
    last = Path(run_dir) / "checkpoints" / "last.pt"
    state = {"model": model.state_dict(), "step": step, "config": to_dict(config), "stats": stats.to_dict(),
             "elapsed_s": 0.0, **(extra or {})}
    save_checkpoint(last, state)
    return last


@torch.inference_mode()
def encode_frames(model: LeWM, frames: np.ndarray, device: str | torch.device = "cpu",
                  batch_size: int | None = None) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames -> (N, D) embeddings on `device`, `batch_size` frames at a time (all at once
    when None): the one path from stored or rendered frames to embeddings for planning and analysis."""
    step = batch_size or max(len(frames), 1)
    out = []
    for begin in range(0, len(frames), step):
        pixels = torch.from_numpy(np.ascontiguousarray(frames[begin : begin + step])).to(device)
        pixels = rearrange(pixels, "n h w c -> n 1 c h w")  # N T=1 3 H W
        out.append(model.encode(pixels)[:, 0])  # N D
    return torch.cat(out)
