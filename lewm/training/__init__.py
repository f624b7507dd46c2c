"""Training: the loop, checkpoints, metrics and multi-process set-up."""

from lewm.training.checkpoint import load_checkpoint, save_checkpoint
from lewm.training.trainer import TrainResult, train, warmup_cosine

__all__ = ["TrainResult", "load_checkpoint", "save_checkpoint", "train", "warmup_cosine"]
