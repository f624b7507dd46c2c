"""The LeWM objective: next-embedding prediction MSE plus lambda * SIGReg, and nothing else.

No EMA target, no stop-gradient, no frozen encoder: the target embeddings carry gradient, and SIGReg alone
keeps the encoder from collapsing to a constant.
"""

from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from lewm.objectives.prediction import prediction_loss
from lewm.objectives.sigreg import SIGReg


class LeWMObjective(nn.Module):
    """`loss = pred_loss + sigreg_weight * sigreg`, returned with its named terms."""

    def __init__(
        self,
        sigreg_weight: float = 0.1,
        num_projections: int = 1024,
        num_knots: int = 17,
        knot_max: float = 3.0,
        num_preds: int = 1,
    ) -> None:
        super().__init__()
        self.sigreg_weight = sigreg_weight
        self.num_preds = num_preds
        self.sigreg = SIGReg(num_projections, num_knots, knot_max)

    def forward(self, emb: Tensor, pred: Tensor, seed: int, actions: Tensor | None = None) -> dict[str, Tensor]:
        """Loss terms for one batch of clips.

        emb: (B, T, D) projected embeddings of all T = history + num_preds frames.
        pred: (B, h, D) predictions from the first h = history frames; position t targets frame t + num_preds.
        seed: chooses SIGReg's random directions for this step (the same on every rank).
        actions: unused (LeWM has no action term); accepted so every objective is called the same way.
        """
        pred_loss = prediction_loss(emb, pred, self.num_preds)
        sigreg = self.sigreg(rearrange(emb, "b t d -> t b d"), seed)  # per time step over the batch
        loss = pred_loss + self.sigreg_weight * sigreg
        return {"loss": loss, "pred_loss": pred_loss, "sigreg": sigreg}
