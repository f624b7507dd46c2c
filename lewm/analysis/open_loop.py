"""Open-loop prediction error: how far the predictor's latent rollout drifts over H action blocks.

From held-out episodes (the run's validation split) it takes clips of history + H frames a frameskip apart,
encodes the first `history` frames, rolls the predictor out over the H recorded action blocks and compares
each predicted embedding with the encoding of the frame that really followed (squared L2, mean over clips).
The same rollout with the clips' action blocks shuffled between clips, and the last observed embedding copied
forward, give the two references: an error near "shuffled" means the actions are barely used, near "copy last"
that nothing is predicted. Planning scores only the last block's prediction, so the last entry is what CEM
sees. `scripts/open_loop_error.py` prints it; the Push-T diagnosis in the README uses it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from lewm.data import EpisodeFile, held_out_episodes
from lewm.runs import LoadedRun, as_run, encode_frames, run_data_path


def draw_clips(data: EpisodeFile, episodes: np.ndarray, length: int, count: int, seed: int) -> np.ndarray:
    """(count,) first rows of clips of `length` raw steps inside the given episodes, drawn uniformly."""
    starts = np.concatenate([data.ep_offset[e] + np.arange(max(0, data.ep_len[e] - length)) for e in episodes])
    return np.sort(np.random.default_rng(seed).choice(starts, size=count, replace=len(starts) < count))


@torch.inference_mode()
def open_loop_errors(run_dir: Path | LoadedRun, blocks: int, clips: int, seed: int = 0) -> dict:
    """Per-block mean squared latent error (B blocks) of the rollout with true, shuffled and no actions."""
    run = as_run(run_dir)
    model, frameskip, history = run.model, run.config.model.frameskip, run.config.model.history
    with EpisodeFile(run_data_path(run)) as data:
        held_out = held_out_episodes(data.num_episodes, run.config.data.val_fraction, run.config.seed)
        rows = draw_clips(data, held_out, frameskip * (history - 1 + blocks) + 1, clips, seed)
        frame_rows = rows[:, None] + frameskip * np.arange(history + blocks)  # N T
        pixels, actions = data.dataset(run.config.data.pixels_key), data.dataset(run.config.data.action_key)
        frames = np.stack([pixels[r] for r in frame_rows.reshape(-1)])  # (N*T) S S 3
        raw = np.stack([actions[r : r + frameskip * (history - 1 + blocks)] for r in rows])  # N (L*frameskip) A
    emb = rearrange(encode_frames(model, frames), "(n t) d -> n t d", n=len(rows))  # N T D
    normalised = np.asarray(run.stats.normalize(run.config.data.action_key, raw), dtype=np.float32)
    all_blocks = torch.from_numpy(rearrange(normalised, "n (l f) a -> n l (f a)", f=frameskip))  # N L K
    past, planned = all_blocks[:, : history - 1], all_blocks[:, history - 1 :]  # N h-1 K, N B K
    target = emb[:, history:]  # N B D
    shuffled = planned[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))]
    predictions = {"true actions": model.rollout(emb[:, :history], planned, past),
                   "shuffled actions": model.rollout(emb[:, :history], shuffled, past),
                   "copy last": emb[:, history - 1 : history].expand_as(target)}
    errors = {name: ((value - target) ** 2).sum(-1).mean(0).tolist() for name, value in predictions.items()}
    return {"run": str(run.run_dir), "step": run.step, "clips": len(rows), "blocks": blocks, "errors": errors}
