"""Diagnostics of a batch of embeddings, logged while training: per-dimension spread and effective rank
(collapse), and the temporal straightness of clips and of whole episodes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from lewm.data import EpisodeFile


def effective_rank(embeddings: Tensor) -> float:
    """exp(entropy) of the normalised singular values of the centred (N, D) embeddings (1 = rank one, D = full).

    Scale-free, so it complements `embedding_std`: a collapsing encoder can shrink before it loses rank.
    """
    centred = embeddings.float() - embeddings.float().mean(dim=0, keepdim=True)  # N D
    singular = torch.linalg.svdvals(centred)
    total = singular.sum()
    if total <= 0:
        return 1.0
    p = singular / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def embedding_std(embeddings: Tensor) -> float:
    """Mean over dimensions of the per-dimension standard deviation of (N, D) embeddings (0 = collapsed)."""
    return float(embeddings.float().std(dim=0).mean())


def collapse_diagnostics(embeddings: Tensor) -> dict[str, float]:
    """The diagnostics of (N, D) embeddings, by name: effective rank, mean per-dimension std, and the smallest
    per-dimension std (a single collapsing dimension shows there before it moves the mean)."""
    return {"effective_rank": effective_rank(embeddings), "embedding_std": embedding_std(embeddings),
            "embedding_std_min": float(embeddings.float().std(dim=0).min())}


def temporal_straightness(embeddings: Tensor) -> float | None:
    """Mean cosine between consecutive latent velocities of (B, T, D) embeddings; None when T < 3."""
    if embeddings.shape[1] < 3:
        return None
    velocity = embeddings[:, 1:].float() - embeddings[:, :-1].float()  # B T-1 D
    return float(F.cosine_similarity(velocity[:, 1:], velocity[:, :-1], dim=-1).mean())


@torch.inference_mode()
def episode_straightness(model: torch.nn.Module, data: EpisodeFile, episodes: Sequence[int], stride: int,
                         pixels_key: str = "pixels", device: str | torch.device = "cpu") -> list[float]:
    """Straightness of each episode long enough for three frames `stride` steps apart (frames every `stride`
    steps; the model must have `encode((B, T, 3, H, W) uint8) -> (B, T, D)`); shorter episodes are skipped."""
    pixels = data.dataset(pixels_key)
    values = []
    for episode in episodes:
        if data.ep_len[episode] < 2 * stride + 1:
            continue
        rows = data.ep_offset[episode] + np.arange(0, data.ep_len[episode], stride)  # increasing: one read
        frames = torch.from_numpy(pixels[rows]).to(device)  # T H W 3
        frames = rearrange(frames, "t h w c -> 1 t c h w")  # B=1 T 3 H W
        values.append(temporal_straightness(model.encode(frames)))
    return values
