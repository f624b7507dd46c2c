"""The PLDM baseline objective (Sobal et al. 2025), in the same trainer as LeWM so the two compare on equal terms.

PLDM keeps the encoder from collapsing with VICReg-style terms instead of SIGReg:

    loss = pred_loss + alpha * variance + beta * covariance + gamma * time_similarity
           + zeta * time_variance + nu * time_covariance + mu * inverse_dynamics

- variance / covariance: across the batch, per time step: every dimension's std is pushed above 1 (hinge) and
  off-diagonal covariances towards 0;
- time_similarity: consecutive embeddings of a clip are pulled together (temporal smoothness);
- time_variance / time_covariance: the same hinge and decorrelation across the frames of each clip;
- inverse_dynamics: a small head predicts the action block between two consecutive embeddings.

Defaults are the values the LeWM authors grid-searched on Push-T (docs/reference.md section 9): alpha 18, beta 12,
gamma 0.2, zeta 0.7, nu 0, mu 0. Six coefficients against LeWM's one: the point of the comparison.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from lewm.objectives.prediction import prediction_loss

_EPS = 1e-4  # inside the square root of the variance hinge, as in VICReg


def variance_hinge(z: Tensor) -> Tensor:
    """mean(relu(1 - std)) of (G, N, D) groups of N samples: dimensions with std below 1 in a group cost."""
    std = torch.sqrt(z.var(dim=1) + _EPS)  # G D
    return F.relu(1.0 - std).mean()


def covariance_penalty(z: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances / D of (G, N, D) groups, averaged over groups."""
    groups, samples, dim = z.shape
    centred = z - z.mean(dim=1, keepdim=True)  # G N D
    cov = centred.transpose(1, 2) @ centred / max(samples - 1, 1)  # G D D
    off_diagonal = cov - torch.diag_embed(torch.diagonal(cov, dim1=1, dim2=2))  # G D D
    return off_diagonal.pow(2).sum(dim=(1, 2)).mean() / dim


class PLDMObjective(nn.Module):
    """PLDM's seven terms on the projected embeddings, returned by name with their weighted sum as `loss`."""

    def __init__(
        self,
        variance_weight: float = 18.0,
        covariance_weight: float = 12.0,
        time_similarity_weight: float = 0.2,
        time_variance_weight: float = 0.7,
        time_covariance_weight: float = 0.0,
        inverse_dynamics_weight: float = 0.0,
        embed_dim: int = 192,
        action_block_dim: int | None = None,
        hidden: int = 256,
        num_preds: int = 1,
    ) -> None:
        super().__init__()
        self.weights = {
            "variance": variance_weight, "covariance": covariance_weight,
            "time_similarity": time_similarity_weight, "time_variance": time_variance_weight,
            "time_covariance": time_covariance_weight, "inverse_dynamics": inverse_dynamics_weight,
        }
        self.num_preds = num_preds
        self.inverse_dynamics: nn.Module | None = None
        if inverse_dynamics_weight > 0:
            if action_block_dim is None:
                raise ValueError("the inverse-dynamics term needs action_block_dim")
            # its parameters train with the model (the trainer adds them to the optimiser and the checkpoint)
            self.inverse_dynamics = nn.Sequential(
                nn.Linear(2 * embed_dim, hidden), nn.GELU(), nn.Linear(hidden, action_block_dim)
            )

    def forward(self, emb: Tensor, pred: Tensor, seed: int, actions: Tensor | None = None) -> dict[str, Tensor]:
        """Loss terms for one batch of clips.

        emb: (B, T, D) projected embeddings of all T frames; pred: (B, h, D) predictions, position t targeting
        frame t + num_preds; actions: (B, T, frameskip*A) normalised action blocks, block t between frames t and
        t + 1 (needed only by the inverse-dynamics term). `seed` is unused (kept for the trainer's one call).
        """
        terms: dict[str, Tensor] = {"pred_loss": prediction_loss(emb, pred, self.num_preds)}  # as in LeWM
        z = emb.float()  # B T D
        across_batch = rearrange(z, "b t d -> t b d")  # groups = time steps, samples = clips
        terms["variance"] = variance_hinge(across_batch)
        terms["covariance"] = covariance_penalty(across_batch)
        zero = z.new_zeros(())
        if z.shape[1] >= 2:
            terms["time_similarity"] = F.mse_loss(z[:, 1:], z[:, :-1])
            terms["time_variance"] = variance_hinge(z)  # groups = clips, samples = their frames
            terms["time_covariance"] = covariance_penalty(z)
        else:
            terms["time_similarity"] = terms["time_variance"] = terms["time_covariance"] = zero
        if self.inverse_dynamics is not None and actions is not None and z.shape[1] >= 2:
            pairs = torch.cat([z[:, :-1], z[:, 1:]], dim=-1)  # B T-1 2D
            terms["inverse_dynamics"] = F.mse_loss(self.inverse_dynamics(pairs), actions[:, : z.shape[1] - 1].float())
        else:
            terms["inverse_dynamics"] = zero
        loss = terms["pred_loss"] + sum(weight * terms[name] for name, weight in self.weights.items())
        return {"loss": loss, **terms}
