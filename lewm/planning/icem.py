"""Improved CEM (iCEM, Pinneri et al. 2020) in latent space, batched over environments.

As stable-worldmodel 0.1.1's `ICEMSolver` (defaults 300 samples, top 30, noise_beta 2, alpha 0.1, 5 kept
elites), each round:
- sample: temporally coloured noise (white noise whose spectrum along the horizon is scaled by f^(-beta/2),
  the zero frequency scaled like the first one, then renormalised to unit std along the horizon per sample and
  action element, as the reference does), candidate 0 the mean, candidates 1..keep the previous round's best
  elites, everything clamped into the action box;
- roll out -> score -> elites (the top `elites`);
- update with momentum: mean and std <- alpha * previous + (1 - alpha) * the elites' (std floored at min_std).
The plan is the mean.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from lewm.planning.rollout import ActionBounds
from lewm.planning.solver import SamplingSolver, State, gather_samples


def coloured_noise(white: Tensor, beta: float, dim: int) -> Tensor:
    """White noise coloured along `dim`: power ~ 1/f^beta, renormalised to unit (unbiased) std along `dim`.

    The zero frequency gets the first nonzero frequency's gain, as in the reference; beta 0 or a length below 2
    returns white noise unchanged."""
    length = white.shape[dim]
    if length <= 1 or beta == 0:
        return white
    freqs = torch.fft.rfftfreq(length, device=white.device, dtype=white.dtype)  # F
    gain = torch.cat([freqs[1:2], freqs[1:]]).pow(-beta / 2)  # F: the zero frequency as the first nonzero one
    shape = [1] * white.ndim
    shape[dim] = gain.shape[0]
    spectrum = torch.fft.rfft(white, dim=dim) * gain.view(shape)
    coloured = torch.fft.irfft(spectrum, n=length, dim=dim)
    return coloured / coloured.std(dim=dim, keepdim=True).clamp_min(1e-8)


class ICEMPlanner(SamplingSolver):
    """Batched iCEM over action blocks: coloured noise, kept elites, momentum; state (mean, std, kept elites)."""

    name = "icem"

    def start(self, mean: Tensor) -> State:
        """Mean and std (N, H, K) each, and no kept elites before the first round."""
        return mean, torch.full_like(mean, self.config.init_std), None

    def noise_shape(self, envs: int) -> tuple[int, ...]:
        """Drawn in the reference's (N, S, K, H) order, so the same seed gives the reference's noise."""
        return envs, self.config.samples, self.block_dim, self.config.horizon

    def noise_view(self, draws: Tensor) -> Tensor:
        return rearrange(draws, "n s k h -> n s h k")

    def iterate(self, runner: Any, context: Any, goal: Tensor, state: State, noise: Tensor,
                bounds: ActionBounds) -> tuple[State, Tensor]:
        """One iCEM round: sample -> roll out -> score -> elites -> update (see `SamplingSolver.iterate`)."""
        cfg = self.config
        mean, std, kept = state
        # sample: coloured noise around the mean, candidate 0 the mean, then the kept elites, all inside the box
        candidates = mean[:, None] + std[:, None] * coloured_noise(noise, cfg.noise_beta, dim=2)  # N S H K
        candidates[:, 0] = mean
        if kept is not None and cfg.keep_elites:  # no kept elites before the first round (a fixed, static branch)
            candidates[:, 1 : 1 + cfg.keep_elites] = kept[:, : cfg.keep_elites]
        candidates = bounds.clamp(candidates)
        # roll out and score
        costs = self.score(runner, context, goal, candidates)  # N S
        # elites: the lowest costs, best first
        elite_costs, elite_index = costs.topk(cfg.elites, dim=1, largest=False)  # N E
        elites = gather_samples(candidates, elite_index)  # N E H K
        # update with momentum
        mean = cfg.alpha * mean + (1 - cfg.alpha) * elites.mean(dim=1)  # N H K
        std = (cfg.alpha * std + (1 - cfg.alpha) * elites.std(dim=1)).clamp_min(cfg.min_std)  # N H K
        return (mean, std, elites), elite_costs[:, 0]
