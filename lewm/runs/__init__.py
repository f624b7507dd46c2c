"""Run directories: atomic checkpoint files, and the one reader of a run (model + config + statistics).

Below training, evaluation, analysis and the official-checkpoint converters, which all read or write runs
through it; it imports only the model, data and config layers.
"""

from lewm.runs.checkpoint import load_checkpoint, save_checkpoint
from lewm.runs.loading import (
    LoadedRun,
    as_run,
    encode_frames,
    load_run,
    run_data_path,
    write_model_run,
    write_run_files,
)

__all__ = ["LoadedRun", "as_run", "encode_frames", "load_checkpoint", "load_run", "run_data_path",
           "save_checkpoint", "write_model_run", "write_run_files"]
