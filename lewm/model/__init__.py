"""The LeWM network: ViT encoder, projectors, action encoder, AdaLN-zero predictor, and latent rollout."""

from lewm.model.encoder import PixelPreprocess, ViT, build_vit, preprocess_pixels
from lewm.model.fast_rollout import FastRollout
from lewm.model.lewm import LeWM
from lewm.model.modules import ActionEncoder, MLPProjector, Predictor

__all__ = [
    "ActionEncoder",
    "FastRollout",
    "LeWM",
    "MLPProjector",
    "PixelPreprocess",
    "Predictor",
    "ViT",
    "build_vit",
    "preprocess_pixels",
]
