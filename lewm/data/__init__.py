"""Episode data: the community HDF5 layout (read, validate, write), clip sampling and normalisation stats."""

from lewm.data.clips import ClipDataset, held_out_episodes, split_episodes
from lewm.data.hdf5 import EpisodeFile, EpisodeWriter, write_episodes
from lewm.data.stats import NormStats, compute_stats

__all__ = [
    "ClipDataset",
    "EpisodeFile",
    "EpisodeWriter",
    "NormStats",
    "compute_stats",
    "held_out_episodes",
    "split_episodes",
    "write_episodes",
]
