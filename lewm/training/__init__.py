"""Training: the loop, the diagnostics it logs, metrics and multi-process set-up (checkpoint files: lewm.runs)."""

from lewm.training.trainer import TrainResult, train, warmup_cosine

__all__ = ["TrainResult", "train", "warmup_cosine"]
