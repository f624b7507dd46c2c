"""Training: the loop (trainer), what each rank trains on (data), the diagnostics it logs, metrics and plots, and
multi-process set-up (checkpoint files: lewm.runs)."""

from lewm.training.trainer import TrainResult, train, warmup_cosine

__all__ = ["TrainResult", "train", "warmup_cosine"]
