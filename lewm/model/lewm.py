"""LeWM: a ViT encoder, a projector, an action encoder and a causal AdaLN-zero predictor, trained end to end.

Frames become D-dimensional embeddings (ViT CLS token -> MLP+BatchNorm projector); the predictor, given the
embeddings and action blocks of frames 0..t, predicts the embedding of frame t+1. Nothing is frozen and no
stop-gradient is applied: the objective (prediction MSE + SIGReg, in lewm.objectives) shapes the targets too.

Conventions: B batch, T frames, H planning horizon (action blocks), D embedding, A raw action size.
`actions[:, t]` is the block of frameskip raw actions executed between frame t and frame t+1, flattened to
frameskip * A and normalised; a NaN block (after an episode's last frame) is read as zeros.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from lewm.config import ModelConfig
from lewm.errors import LewmError
from lewm.model.encoder import PixelPreprocess, build_vit
from lewm.model.modules import ActionEncoder, MLPProjector, Predictor


class LeWM(nn.Module):
    """The LeWorldModel network; submodule names match the reference checkpoints' state-dict keys.

    Attributes: `encoder` (ViT), `projector`, `action_encoder`, `predictor`, `pred_proj`, and `preprocess`
    (pixel normalisation, no parameters and nothing in the state dict).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.action_dim is None:
            raise LewmError("config: model.action_dim is None: it must be set (or read from the dataset) "
                            "before the model is built")
        config.validate()
        self.config = config
        self.history = config.history
        enc, pred = config.encoder, config.predictor
        self.preprocess = PixelPreprocess(enc.image_size)
        self.encoder = build_vit(enc)
        self.projector = MLPProjector(enc.width, config.projector_hidden, config.embed_dim)
        self.action_encoder = ActionEncoder(config.action_block_dim, config.action_patch,
                                            config.action_hidden, config.embed_dim)
        self.predictor = Predictor(config.embed_dim, pred.depth, pred.heads, pred.head_dim, pred.mlp_dim,
                                   pred.dropout, max_frames=config.history)
        self.pred_proj = MLPProjector(config.embed_dim, config.projector_hidden, config.embed_dim)

    # -----------------------------------------------------------------------------------------------------
    # Encoding
    # -----------------------------------------------------------------------------------------------------

    def frame_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The ViT's CLS token per frame, before the projector (useful for probes and collapse diagnostics).

        pixels (B, T, 3, H, W) uint8 or float in [0, 1], any H, W -> (B, T, W_vit).
        """
        if pixels.dim() != 5:
            raise ValueError(f"expected pixels (B, T, 3, H, W), got {tuple(pixels.shape)}")
        batch = pixels.shape[0]
        frames = rearrange(pixels, "b t c h w -> (b t) c h w")  # (B*T, 3, H, W)
        hidden = self.encoder(self.preprocess(frames))  # (B*T, 1 + P, W_vit)
        return rearrange(hidden[:, 0], "(b t) w -> b t w", b=batch)  # (B, T, W_vit)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Frames to embeddings: pixels (B, T, 3, H, W) uint8 or float in [0, 1] -> emb (B, T, D).

        The projector's BatchNorm pools over all B*T frames in training mode.
        """
        return self.projector(self.frame_features(pixels))  # (B, T, D)

    def encode_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Action blocks to embeddings: actions (B, T, frameskip*A) normalised, NaN allowed -> (B, T, D)."""
        return self.action_encoder(actions)

    # -----------------------------------------------------------------------------------------------------
    # Prediction
    # -----------------------------------------------------------------------------------------------------

    def predict(self, emb: torch.Tensor, act_emb: torch.Tensor) -> torch.Tensor:
        """One causal pass: emb (B, T, D), act_emb (B, T, D), T <= history -> pred (B, T, D).

        pred[:, t] is the predicted embedding of frame t+1, from frames 0..t and their action blocks.
        """
        return self.pred_proj(self.predictor(emb, act_emb))  # (B, T, D)

    def forward(self, pixels: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward, teacher forced over the first `history` frames.

        pixels (B, T, 3, H, W), actions (B, T, frameskip*A) with T = history + num_preds (usually) ->
        emb (B, T, D) the embeddings of all T frames, pred (B, h, D) with h = min(T, history).
        The objective compares pred with emb[:, num_preds:num_preds + history]; both carry gradient.
        """
        emb = self.encode(pixels)  # (B, T, D)
        context = min(emb.shape[1], self.history)
        if actions.shape[0] != emb.shape[0] or actions.shape[1] < context:
            raise ValueError(f"need actions (B={emb.shape[0]}, >= {context}, frameskip*A), "
                             f"got {tuple(actions.shape)}")
        act_emb = self.encode_actions(actions[:, :context])  # (B, h, D)
        pred = self.predict(emb[:, :context], act_emb)  # (B, h, D)
        return emb, pred

    def rollout(
        self,
        emb_history: torch.Tensor,
        action_blocks: torch.Tensor,
        past_action_blocks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Autoregressive latent rollout for planning: H predicted embeddings, one per planned action block.

        emb_history (B, h, D): embeddings of the observed frames, h >= 1 (may be below `history`).
        action_blocks (B, H, frameskip*A): planned blocks; block 0 is executed after the last observed frame.
        past_action_blocks (B, h-1, frameskip*A): blocks executed between the observed frames (zeros if None).
        Returns (B, H, D): entry k is the predicted embedding after block k.

        Each step feeds the last `history` embeddings (observed, then predicted) with their action embeddings
        to `predict` and keeps the prediction at the last position. All actions are encoded once, up front.
        """
        batch, observed, _ = emb_history.shape
        horizon = action_blocks.shape[1]
        if observed < 1 or horizon < 1:
            raise ValueError(f"rollout needs h >= 1 frames and H >= 1 blocks, got {observed} and {horizon}")
        if past_action_blocks is None:
            past_action_blocks = action_blocks.new_zeros(batch, observed - 1, action_blocks.shape[-1])
        if past_action_blocks.shape[1] != observed - 1:
            raise ValueError(f"past_action_blocks must hold h - 1 = {observed - 1} blocks, "
                             f"got {tuple(past_action_blocks.shape)}")
        all_blocks = torch.cat([past_action_blocks, action_blocks], dim=1)  # (B, h-1+H, frameskip*A)
        act_emb = self.encode_actions(all_blocks)  # (B, h-1+H, D)

        embs = emb_history  # (B, h+k, D) after k steps
        preds = []
        for step in range(horizon):
            length = observed + step
            start = max(0, length - self.history)
            window_emb = embs[:, start:length]  # (B, <=history, D)
            window_act = act_emb[:, start:length]  # (B, <=history, D); the last one is planned block `step`
            next_emb = self.predict(window_emb, window_act)[:, -1:]  # (B, 1, D)
            preds.append(next_emb)
            embs = torch.cat([embs, next_emb], dim=1)  # (B, h+k+1, D)
        return torch.cat(preds, dim=1)  # (B, H, D)

    # -----------------------------------------------------------------------------------------------------
    # Bookkeeping
    # -----------------------------------------------------------------------------------------------------

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameter counts per component and in total (BatchNorm running stats not included)."""
        counts = {
            name: sum(p.numel() for p in getattr(self, name).parameters())
            for name in ("encoder", "projector", "action_encoder", "predictor", "pred_proj")
        }
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts
