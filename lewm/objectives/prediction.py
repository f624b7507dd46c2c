"""The prediction term every objective shares: teacher-forced next-embedding MSE, with gradient into the targets."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def prediction_loss(emb: Tensor, pred: Tensor, num_preds: int) -> Tensor:
    """MSE between predictions (B, h, D), position t targeting frame t + num_preds, and those frames' embeddings
    from emb (B, T, D). The targets keep their gradient: no stop-gradient, no EMA."""
    context = pred.shape[1]
    if emb.shape[1] < context + num_preds:
        raise ValueError(f"clip of {emb.shape[1]} frames is too short for {context} predictions {num_preds} ahead")
    target = emb[:, num_preds : num_preds + context]  # B h D, with gradient (no stop-grad)
    return F.mse_loss(pred.float(), target.float())
