"""Temporal straightness (docs/reference.md section 8): how straight latent trajectories are, with no regulariser
asking for it.

For embeddings z_0..z_{T-1} of consecutive frames, the latent velocities v_t = z_{t+1} - z_t of neighbouring
steps are compared by cosine similarity; straightness is the mean of cos(v_t, v_{t+1}) over all t and all
trajectories (1 = straight lines, 0 = uncorrelated turns). The trainer logs it on every logged batch (clips of
3+ frames) and at every validation (whole validation episodes), and
`straightness(run_dir)` measures it along whole held-out episodes.

Shapes: B trajectories, T frames, D embedding dim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lewm.data import EpisodeFile, held_out_episodes
from lewm.errors import LewmError
from lewm.runs import LoadedRun, as_run, run_data_path
from lewm.training.diagnostics import episode_straightness
from lewm.utils.device import resolve_device


def straightness(run_dir: Path | LoadedRun, data_path: Path | None = None, episodes: int = 32, device: str = "auto",
                 stride: int | None = None) -> dict[str, Any]:
    """Straightness along up to `episodes` validation episodes of a run's (directory or `LoadedRun`) data,
    frames taken every `stride` steps (default: the run's frameskip, the model's time step)."""
    device = resolve_device(device)
    run = as_run(run_dir, device)
    run_dir = run.run_dir
    data_path = run_data_path(run, data_path)
    stride = stride or run.config.model.frameskip
    with EpisodeFile(data_path, pixels_key=run.config.data.pixels_key,
                     action_key=run.config.data.action_key) as data:
        chosen = held_out_episodes(data.num_episodes, run.config.data.val_fraction, run.config.seed)[:episodes]
        values = episode_straightness(run.model, data, chosen, stride, run.config.data.pixels_key, device)
    if not values:
        raise LewmError(f"{data_path}: no episode has the {2 * stride + 1} steps that three frames "
                        f"{stride} steps apart need")
    return {"straightness": float(np.mean(values)), "episodes": len(values), "stride": stride,
            "run": str(run_dir), "data": str(data_path), "checkpoint_step": run.step}
