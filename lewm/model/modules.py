"""LeWM's small parts: the MLP+BatchNorm projectors, the action encoder and the action-conditioned predictor.

Attribute names follow the reference checkpoints (docs/reference.md section 10), so a released `weights.pt` loads
with strict=True: `net.{0,1,3}` for projectors, `patch_embed` / `embed.{0,2}` for the action encoder,
`pos_embedding` and `transformer.{layers.{i}.{adaLN_modulation.1, attn.norm, attn.to_qkv, attn.to_out.0,
mlp.net.{0,1,4}}, norm}` for the predictor.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import pack, rearrange, unpack
from torch import nn

from lewm.errors import LewmError


class MLPProjector(nn.Module):
    """Linear -> BatchNorm1d -> GELU -> Linear, applied to every embedding independently.

    LeWM needs it after the ViT because the ViT's final LayerNorm pins every CLS vector to a fixed norm,
    which keeps SIGReg from shaping the distribution into an isotropic Gaussian; the BatchNorm in the middle
    is the reference design (its running statistics are part of the checkpoint). The same shape serves as
    the prediction projector after the predictor.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.GELU(),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, D_in) or (B, T, D_in) -> same leading shape with D_out; BatchNorm pools over all of B*T."""
        flat, packed_shape = pack([x], "* d")  # (B*T, D_in)
        out = self.net(flat)  # (B*T, D_out)
        (out,) = unpack(out, packed_shape, "* d")  # (B, T, D_out)
        return out


class ActionEncoder(nn.Module):
    """Embed each action block (the frameskip raw actions between two frames, flattened) into the latent size.

    Per time step: Linear(block_dim -> patch) -> Linear(patch -> hidden) -> SiLU -> Linear(hidden -> D).
    Missing actions (NaN, e.g. the block after the last frame of an episode) become 0 so they cannot poison
    the batch.
    """

    def __init__(self, block_dim: int, patch: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.block_dim = block_dim
        self.patch_embed = nn.Linear(block_dim, patch)
        self.embed = nn.Sequential(nn.Linear(patch, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        """actions (B, T, block_dim) normalised blocks -> (B, T, D)."""
        if actions.shape[-1] != self.block_dim:
            raise LewmError(f"action blocks have size {actions.shape[-1]} but the model expects "
                            f"model.frameskip * model.action_dim = {self.block_dim}")
        actions = torch.nan_to_num(actions.to(self.patch_embed.weight.dtype), nan=0.0)
        return self.embed(self.patch_embed(actions))

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        """Also accept the reference checkpoints' patch_embed: a kernel-1 Conv1d, weight (patch, block, 1).

        A kernel-1 convolution over time is exactly this per-step Linear, so its weight only loses the
        trailing axis.
        """
        key = prefix + "patch_embed.weight"
        weight = state_dict.get(key)
        if weight is not None and weight.dim() == 3 and weight.shape[-1] == 1:
            state_dict[key] = weight[..., 0]  # (patch, block_dim, 1) -> (patch, block_dim)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """AdaLN modulation: x * (1 + scale) + shift (scale 0 and shift 0 leave x unchanged)."""
    return x * (1 + scale) + shift


class CausalSelfAttention(nn.Module):
    """Multi-head attention over frames, each frame seeing only itself and earlier frames.

    It starts with its own affine LayerNorm although the block already normalised (and modulated) its input:
    the reference does so and its checkpoints hold `attn.norm`.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D)."""
        qkv = self.to_qkv(self.norm(x)).chunk(3, dim=-1)  # 3 x (B, T, heads*head_dim)
        q, k, v = (rearrange(t, "b t (h d) -> b h t d", h=self.heads) for t in qkv)  # (B, heads, T, head_dim)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                             dropout_p=self.dropout if self.training else 0.0)
        out = rearrange(out, "b h t d -> b t (h d)")  # (B, T, heads*head_dim)
        return self.to_out(out)


class FeedForward(nn.Module):
    """LayerNorm -> Linear -> GELU -> Dropout -> Linear -> Dropout (keys net.0, net.1, net.4)."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AdaLNBlock(nn.Module):
    """Transformer block conditioned per token on the action embedding by AdaLN-zero.

    The conditioning MLP's last layer starts at zero, so every gate starts at zero and a fresh block is the
    identity: training begins from "the next embedding equals the current one" and learns how actions change
    it, which is what makes AdaLN-zero train stably.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(dim, heads, head_dim, dropout)
        self.mlp = FeedForward(dim, mlp_dim, dropout)
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.adaLN_modulation[1].weight)
        nn.init.zeros_(self.adaLN_modulation[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) frame tokens, c (B, T, D) action embeddings -> (B, T, D)."""
        modulation = self.adaLN_modulation(c)  # (B, T, 6*D)
        shift1, scale1, gate1, shift2, scale2, gate2 = modulation.chunk(6, dim=-1)  # 6 x (B, T, D)
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1))
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class PredictorTransformer(nn.Module):
    """The block stack and the final affine LayerNorm (attributes `layers`, `norm` as in the reference)."""

    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [AdaLNBlock(dim, heads, head_dim, mlp_dim, dropout) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, T, D), c (B, T, D) -> (B, T, D)."""
        for block in self.layers:
            x = block(x, c)
        return self.norm(x)


class Predictor(nn.Module):
    """Causal transformer over time: position t, given frames <= t and their actions, predicts frame t+1.

    A learned time embedding (max_frames rows, randn init as in the reference) is added to the frame
    embeddings; actions enter every block through AdaLN-zero rather than as extra tokens, which keeps the
    sequence at one token per frame.
    """

    def __init__(self, dim: int, depth: int, heads: int, head_dim: int, mlp_dim: int, dropout: float,
                 max_frames: int) -> None:
        super().__init__()
        self.max_frames = max_frames
        self.pos_embedding = nn.Parameter(torch.randn(1, max_frames, dim))
        self.transformer = PredictorTransformer(dim, depth, heads, head_dim, mlp_dim, dropout)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) frame embeddings, c (B, T, D) action embeddings, T <= max_frames -> (B, T, D)."""
        num_frames = x.shape[1]
        if num_frames > self.max_frames:
            raise ValueError(f"the predictor sees at most {self.max_frames} frames (model.history), "
                             f"got {num_frames}")
        if c.shape[:2] != x.shape[:2]:
            raise ValueError(f"frames {tuple(x.shape)} and actions {tuple(c.shape)} disagree on (B, T)")
        x = x + self.pos_embedding[:, :num_frames]  # (B, T, D)
        return self.transformer(x, c)
