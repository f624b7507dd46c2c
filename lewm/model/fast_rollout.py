"""A fast latent rollout for planning: the same numbers as `LeWM.rollout`, with less work.

A CEM plan calls the predictor iterations x horizon times on samples x window tokens. `LeWM.rollout` (the eager
path, wrapped by `lewm.planning.PlainRollout`) recomputes everything for every sample at every step. `FastRollout`
gives the same
predictions (to float rounding; a test checks it) while skipping work whose result is known or unused:

1. Shared prefix: window tokens that are observed frames carrying *executed* actions are the same for every
   sample, so their keys and values are computed once per environment and plan, not per sample and iteration.
2. AdaLN modulation depends on the action embedding alone (not on the window position), so each action block's
   six modulation vectors, for all layers at once, are computed once, in one matmul when the block enters the
   window, instead of once per layer and per window it appears in.
3. Only the window's last token is read out: the last layer computes the query, attention output, MLP, final
   norm and prediction projector for that token alone (earlier tokens still supply keys and values).
4. A window of one token attends to itself with weight 1: the query and key projections are skipped and the
   value and output projections fold into one D x D matrix.
5. Attention over a few tokens is plain batched matmuls (a fused SDPA kernel costs more than it saves there).
6. Embeddings live in one preallocated (B, h + H, D) buffer instead of a growing `torch.cat`.

Shapes: N environments, S samples per environment, B = N*S rows, h observed frames, H horizon, P shared and Q
per-sample tokens of the current window, L layers, D embedding, I = heads x head_dim, K action-block size.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

from lewm.model.lewm import LeWM
from lewm.model.modules import AdaLNBlock, modulate


@dataclass
class _StepPlan:
    """Where the window of one rollout step lies in the (h + H) token sequence."""

    start: int
    """First token of the window."""
    shared: int
    """P: leading window tokens that are observed frames with executed actions (the same for every sample)."""
    length: int
    """End of the window (exclusive); the step predicts token `length`."""
    shared_kv: list[tuple[Tensor, Tensor]] | None = None
    """Per layer, keys and values (N, heads, P, head_dim) of the shared tokens."""


class FastRollout:
    """Exact, faster planning rollouts for a `LeWM` in eval mode (see the module docstring for what is skipped).

    It folds some weights together when built, so build it from the final weights (after loading or training).
    dtype: compute in this dtype (e.g. torch.bfloat16 on a GPU) on a converted copy of the model, so no cast of
    a weight is repeated per call as under autocast; inputs are cast to it and predictions come back in fp32.
    None computes in the model's own dtype.
    """

    def __init__(self, model: LeWM, dtype: torch.dtype | None = None) -> None:
        if model.training:
            raise ValueError("FastRollout needs the model in eval mode (dropout off, BatchNorm running stats)")
        self.dtype = dtype or model.predictor.pos_embedding.dtype
        self.model = model if dtype is None else copy.deepcopy(model).to(dtype)
        model = self.model
        predictor = model.predictor
        self.blocks: list[AdaLNBlock] = list(predictor.transformer.layers)
        self.history = model.history
        attn = self.blocks[0].attn
        self.heads = attn.heads
        self.inner = attn.to_qkv.out_features // 3
        self.head_dim = self.inner // self.heads
        # every layer's AdaLN projection stacked: one (L*6D, D) matmul modulates all layers at once
        self.modulation_weight = torch.cat([b.adaLN_modulation[1].weight for b in self.blocks])  # L*6D D
        self.modulation_bias = torch.cat([b.adaLN_modulation[1].bias for b in self.blocks])  # L*6D
        # a lone token's attention output is to_out(values): value and output projections fold into one D x D
        self.value_out = [b.attn.to_out[0].weight @ b.attn.to_qkv.weight[2 * self.inner :] for b in self.blocks]

    # ----------------------------------------------------------------------------------------------------
    def _modulations(self, act_emb: Tensor) -> Tensor:
        """(B, T, D) action embeddings -> (L, B, T, 6D) AdaLN modulations of every layer."""
        out = F.linear(F.silu(act_emb), self.modulation_weight, self.modulation_bias)  # B T L*6D
        return rearrange(out, "b t (l m) -> l b t m", l=len(self.blocks))

    def _qkv(self, block: AdaLNBlock, x: Tensor, shift: Tensor, scale: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys, values (B, heads, T, head_dim) of (B, T, D) tokens entering `block`."""
        normed = block.attn.norm(modulate(block.norm1(x), shift, scale))  # B T D
        qkv = rearrange(F.linear(normed, block.attn.to_qkv.weight), "b t (c h e) -> c b h t e", c=3, h=self.heads)
        return qkv[0], qkv[1], qkv[2]

    def _finish(self, block: AdaLNBlock, x: Tensor, attention_out: Tensor, gate1: Tensor, shift2: Tensor,
                scale2: Tensor, gate2: Tensor) -> Tensor:
        """Residual attention output (B, T, D), already through `to_out`, then the MLP of `block`."""
        x = x + gate1 * attention_out
        return x + gate2 * block.mlp(modulate(block.norm2(x), shift2, scale2))

    def _shared_prefix(self, tokens: Tensor, mods: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Run (N, P, D) shared tokens (positions 0..P-1 added) through every layer; return each layer's K, V."""
        x = tokens + self.model.predictor.pos_embedding[:, : tokens.shape[1]]  # N P D
        mask = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool, device=tokens.device).tril()
        kv = []
        for layer, block in enumerate(self.blocks):
            shift1, scale1, gate1, shift2, scale2, gate2 = mods[layer].chunk(6, dim=-1)  # 6 x (N, P, D)
            q, k, v = self._qkv(block, x, shift1, scale1)  # N heads P e
            kv.append((k, v))
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # N heads P e
            out = block.attn.to_out(rearrange(attended, "b h t e -> b t (h e)"))  # N P D
            x = self._finish(block, x, out, gate1, shift2, scale2, gate2)
        return kv

    # ----------------------------------------------------------------------------------------------------
    def prepare(self, emb_history: Tensor, past_blocks: Tensor | None, samples: int, horizon: int) -> dict:
        """Everything that is the same for every sample and CEM iteration of one plan, computed once.

        emb_history (N, h, D), past_blocks (N, h-1, K) or None (zeros), S samples, H horizon.
        """
        emb_history = emb_history.to(self.dtype)
        envs, observed, _ = emb_history.shape
        if past_blocks is None:
            block_dim = self.model.action_encoder.block_dim
            past_blocks = emb_history.new_zeros(envs, observed - 1, block_dim)
        past_act = self.model.encode_actions(past_blocks)  # N h-1 D
        past_mods = self._modulations(past_act)  # L N h-1 6D
        steps = []
        for step in range(horizon):
            length = observed + step
            start = max(0, length - self.history)
            shared = max(0, min(length, observed - 1) - start)
            plan = _StepPlan(start=start, shared=shared, length=length)
            if shared:
                plan.shared_kv = self._shared_prefix(emb_history[:, start : start + shared],
                                                     past_mods[:, :, start : start + shared])
            steps.append(plan)
        return {"emb_history": emb_history, "samples": samples, "past_mods": past_mods, "steps": steps}

    def __call__(self, context: dict, action_blocks: Tensor) -> Tensor:
        """(B = N*S, H, K) candidate blocks -> (B, H, D) predicted embeddings, equal to `LeWM.rollout`'s."""
        emb_history, samples = context["emb_history"], context["samples"]
        envs, observed, dim = emb_history.shape
        batch, horizon, _ = action_blocks.shape
        if batch != envs * samples or horizon > len(context["steps"]):
            raise ValueError(f"blocks {tuple(action_blocks.shape)} do not fit a context prepared for {envs} envs x "
                             f"{samples} samples and horizon {len(context['steps'])}")
        past_mods = context["past_mods"]  # L N h-1 6D
        planned_act = self.model.encode_actions(action_blocks)  # B H D
        planned_mods: list[Tensor] = []  # per planned block, (L, B, 1, 6D), each computed once when it enters
        tokens = emb_history.new_empty(batch, observed + horizon, dim)  # B h+H D, filled as predictions come
        tokens[:, :observed] = repeat(emb_history, "n h d -> (n s) h d", s=samples)
        positions = self.model.predictor.pos_embedding[0]  # max_frames D
        last_layer = len(self.blocks) - 1
        for step, plan in enumerate(context["steps"][:horizon]):
            first_own = plan.start + plan.shared  # the per-sample tokens of this window start here
            own = plan.length - first_own  # Q
            x = tokens[:, first_own : plan.length] + positions[plan.shared : plan.shared + own]  # B Q D
            # modulations of the per-sample tokens: token j carries block j (executed ones first, then planned);
            # planned block `step` enters the window now (one block at a time keeps the arrays cache-sized)
            planned_mods.append(self._modulations(planned_act[:, step : step + 1]))  # L B 1 6D
            parts = []
            if first_own < observed - 1:
                parts.append(repeat(past_mods[:, :, first_own : observed - 1], "l n t m -> l (n s) t m", s=samples))
            parts += planned_mods[max(first_own - (observed - 1), 0) :]
            mods = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)  # L B Q 6D
            for layer, block in enumerate(self.blocks):
                shift1, scale1, gate1, shift2, scale2, gate2 = mods[layer].chunk(6, dim=-1)  # 6 x (B, Q, D)
                last = layer == last_layer
                attention_out = self._attend(block, x, shift1, scale1, plan, layer, samples, last_only=last)
                if last:  # only the last token is read out; the others only gave keys and values
                    x, gate1, shift2, scale2, gate2 = (t[:, -1:] for t in (x, gate1, shift2, scale2, gate2))
                x = self._finish(block, x, attention_out, gate1, shift2, scale2, gate2)
            prediction = self.model.pred_proj(self.model.predictor.transformer.norm(x[:, -1:]))  # B 1 D
            tokens[:, plan.length] = prediction[:, 0]
        return tokens[:, observed : observed + horizon].float()

    def _attend(self, block: AdaLNBlock, x: Tensor, shift: Tensor, scale: Tensor, plan: _StepPlan, layer: int,
                samples: int, last_only: bool) -> Tensor:
        """Causal attention of the (B, Q, D) per-sample tokens over [shared ; per-sample] keys, through the output
        projection -> (B, Q, D), or (B, 1, D) for the last token alone when `last_only`."""
        normed = block.attn.norm(modulate(block.norm1(x), shift, scale))  # B Q D
        weight = block.attn.to_qkv.weight  # 3I D: queries, keys, values
        if plan.shared == 0 and x.shape[1] == 1:  # one token attends to itself with weight 1: only values matter
            return F.linear(normed, self.value_out[layer], block.attn.to_out[0].bias)  # B 1 D
        queries = normed[:, -1:] if last_only else normed
        q = rearrange(F.linear(queries, weight[: self.inner]), "b t (h e) -> b h t e", h=self.heads)  # B heads Tq e
        kv = rearrange(F.linear(normed, weight[self.inner :]), "b t (c h e) -> c b h t e", c=2, h=self.heads)
        k, v = kv[0], kv[1]  # B heads Q e
        if plan.shared:
            shared_k, shared_v = plan.shared_kv[layer]  # N heads P e
            k = torch.cat([repeat(shared_k, "n h p e -> (n s) h p e", s=samples), k], dim=2)  # B heads P+Q e
            v = torch.cat([repeat(shared_v, "n h p e -> (n s) h p e", s=samples), v], dim=2)
        keys, queries_count = k.shape[2], q.shape[2]
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # B heads Tq P+Q
        if queries_count > 1:  # query i (window position keys - Tq + i) sees keys up to its own position
            query_positions = torch.arange(keys - queries_count, keys, device=q.device)
            causal = torch.arange(keys, device=q.device)[None, :] <= query_positions[:, None]  # Tq P+Q
            scores = scores.masked_fill(~causal, float("-inf"))
        attended = scores.softmax(dim=-1) @ v  # B heads Tq e
        return block.attn.to_out(rearrange(attended, "b h t e -> b t (h e)"))  # B Tq D
