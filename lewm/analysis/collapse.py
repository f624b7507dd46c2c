"""Diagnostics of a batch of embeddings, logged while training: per-dimension spread and effective rank
(collapse), and the temporal straightness of clips."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


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
