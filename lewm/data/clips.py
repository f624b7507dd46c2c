"""Training clips cut from episode files, and the train/validation split by episode.

A clip is ``T = history + num_preds`` frames `frameskip` raw steps apart, starting at any row of an episode
from which all ``T * frameskip`` raw rows fit inside that episode (docs/reference.md section 4): frames take rows
r, r + frameskip, ..., r + (T - 1) * frameskip; actions take every raw row, grouped into T blocks of
`frameskip` actions so that block t holds the actions taken between frame t and frame t + 1.

`ClipDataset` reads lazily: it validates the file once in the constructor, then each process (the main one
and every DataLoader worker, forked or spawned) opens its own read-only h5py handle on first access. It
reads one clip at a time with strided slices, so memory does not grow with the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from lewm.data.hdf5 import EpisodeFile
from lewm.data.stats import NormStats
from lewm.errors import LewmError


def split_episodes(num_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split episode ids 0..E-1 into sorted (train, val) int64 arrays by a seeded permutation.

    Splitting by episode (never inside one) keeps validation clips from overlapping training clips. There is
    always at least one training episode; with E >= 2 and val_fraction > 0 there is at least one validation
    episode; val is empty when val_fraction is 0 or E is 1.
    """
    if num_episodes < 1:
        raise LewmError(f"split: num_episodes = {num_episodes} is invalid: need at least one episode")
    if not 0.0 <= val_fraction < 1.0:
        raise LewmError(f"split: val_fraction = {val_fraction!r} is invalid: must be in [0, 1)")
    num_val = math.floor(num_episodes * val_fraction + 0.5)
    if val_fraction > 0 and num_episodes >= 2:
        num_val = max(num_val, 1)
    num_val = min(num_val, num_episodes - 1)
    order = np.random.default_rng(seed).permutation(num_episodes)
    val = np.sort(order[:num_val]).astype(np.int64)
    train = np.sort(order[num_val:]).astype(np.int64)
    return train, val


def held_out_episodes(num_episodes: int, val_fraction: float, seed: int) -> np.ndarray:
    """The validation episodes of `split_episodes`, or the training ones when there are none (val_fraction 0,
    one episode): what evaluation and analysis draw from, so they test on held-out episodes whenever a run has
    them."""
    train, val = split_episodes(num_episodes, val_fraction, seed)
    return val if len(val) else train


class ClipDataset(Dataset):
    """Fixed-length clips of one HDF5 episode file, as dicts of tensors.

    Item ``i`` is ``{"pixels": uint8 (T, 3, H, W), "action": float32 (T, frameskip * A), <extra>: float32
    (T, P)}``. Pixels stay uint8 at their stored size (the model resizes and normalises on the device);
    actions and extras are z-scored with `stats` when given, and NaN becomes 0 after normalisation.

    With no clip to cut (every selected episode shorter than ``T * frameskip`` rows) the constructor raises
    a `LewmError`, unless `allow_empty` is set (e.g. for an optional validation split): then the dataset
    simply has no items.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        history: int,
        num_preds: int,
        frameskip: int,
        episodes: np.ndarray | Sequence[int] | None = None,
        stats: NormStats | None = None,
        extra_columns: Sequence[str] = (),
        pixels_key: str = "pixels",
        action_key: str = "action",
        allow_empty: bool = False,
    ):
        self.path = Path(path)
        self._set_clip_shape(history, num_preds, frameskip)
        self.pixels_key = pixels_key
        self.action_key = action_key
        self.extra_columns = tuple(extra_columns)
        self.stats = stats
        with EpisodeFile(self.path, pixels_key=pixels_key, action_key=action_key) as file:
            self.image_shape: tuple[int, int, int] = file.image_shape  # (H, W, 3)
            self.action_dim: int = file.action_dim  # A
            self.extra_dims: dict[str, int] = self._extra_dims(file)
            ep_len, ep_offset = file.ep_len, file.ep_offset
        self.episodes: np.ndarray = self._select_episodes(episodes, len(ep_len))
        self.action_block_dim = self.frameskip * self.action_dim
        self._norm: dict[str, tuple[np.ndarray, np.ndarray]] = self._norm_arrays(stats)
        self._cut_clips(ep_len, ep_offset, allow_empty)
        self._file: h5py.File | None = None
        self._columns: dict[str, h5py.Dataset] = {}
        self._pid: int | None = None

    # -- construction steps ----------------------------------------------------------------------------

    def _set_clip_shape(self, history: Any, num_preds: Any, frameskip: Any) -> None:
        """Check and set the clip's shape: T = history + num_preds frames, `frameskip` raw rows apart."""
        limits = (("history", history, 1), ("num_preds", num_preds, 0), ("frameskip", frameskip, 1))
        for name, value, least in limits:
            if not isinstance(value, int | np.integer) or value < least:
                raise LewmError(f"{self.path}: {name} = {value!r} is invalid: must be an integer >= {least}")
        self.history = int(history)
        self.num_preds = int(num_preds)
        self.frameskip = int(frameskip)
        self.num_frames = self.history + self.num_preds  # T
        self.span = self.num_frames * self.frameskip  # raw rows one clip covers

    def _extra_dims(self, file: EpisodeFile) -> dict[str, int]:
        """Values per row of each extra column, which must be a numeric column other than pixels and action."""
        dims = {}
        for name in self.extra_columns:
            if name in (self.pixels_key, self.action_key):
                raise LewmError(f"{self.path}: extra column '{name}' is the pixels or action column")
            if name not in file.columns:
                raise LewmError(f"{self.path}: missing column '{name}'")
            dtype = file.dataset(name).dtype
            if not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
                raise LewmError(f"{self.path}: column '{name}' has dtype {dtype}, expected numbers")
            dims[name] = file.column_dim(name)
        return dims

    def _select_episodes(self, episodes: np.ndarray | Sequence[int] | None, num_episodes: int) -> np.ndarray:
        """The episode ids to cut clips from as int64 (E',): all when None, else the given ones, all existing."""
        if episodes is None:
            return np.arange(num_episodes, dtype=np.int64)
        selected = np.asarray(episodes, dtype=np.int64).reshape(-1)  # (E',)
        if len(selected) == 0:
            raise LewmError(f"{self.path}: no episodes selected")
        bad = selected[(selected < 0) | (selected >= num_episodes)]
        if len(bad):
            raise LewmError(f"{self.path}: episode {bad[0]} does not exist (the file has {num_episodes} episodes)")
        return selected

    def _norm_arrays(self, stats: NormStats | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """float32 (mean, std) of (D,) per normalised column, checked against the file's dims up front so that a
        mismatch fails here rather than inside a DataLoader worker."""
        if stats is None:
            return {}
        norm = {}
        for name, dim in ((self.action_key, self.action_dim), *self.extra_dims.items()):
            if name not in stats.mean or name not in stats.std:
                raise LewmError(f"{self.path}: normalisation stats lack column '{name}'")
            if stats.mean[name].shape != (dim,) or stats.std[name].shape != (dim,):
                raise LewmError(
                    f"{self.path}: normalisation stats for column '{name}' have "
                    f"{stats.mean[name].size} dims, the file has {dim}"
                )
            norm[name] = (stats.mean[name].astype(np.float32), stats.std[name].astype(np.float32))
        return norm

    def _cut_clips(self, ep_len: np.ndarray, ep_offset: np.ndarray, allow_empty: bool) -> None:
        """Set `clip_starts` and `clip_episodes`: every start row r with r .. r + span - 1 inside its episode, in
        episode order."""
        lengths = ep_len[self.episodes]
        counts = np.maximum(lengths - self.span + 1, 0)
        if counts.sum() == 0 and not allow_empty:
            raise LewmError(
                f"{self.path}: no episode is long enough for a clip of {self.span} rows "
                f"(T={self.num_frames} frames x frameskip={self.frameskip}); the longest episode has "
                f"{int(lengths.max())} rows"
            )
        pieces = [
            ep_offset[e] + np.arange(n, dtype=np.int64) for e, n in zip(self.episodes, counts, strict=True)
        ]
        self.clip_starts: np.ndarray = np.concatenate([np.zeros(0, dtype=np.int64), *pieces])  # (num_clips,)
        self.clip_episodes: np.ndarray = np.repeat(self.episodes, counts).astype(np.int64)  # (num_clips,)

    # -- lazy per-process handle -----------------------------------------------------------------------

    def _datasets(self) -> dict[str, h5py.Dataset]:
        """This process's open datasets by column, opened on first use and again after a fork."""
        pid = os.getpid()
        if self._file is None or self._pid != pid:
            # A handle inherited through fork belongs to the parent; leave it alone and open our own.
            self._file = h5py.File(self.path, "r")
            self._pid = pid
            names = (self.pixels_key, self.action_key, *self.extra_dims)
            self._columns = {name: self._file[name] for name in names}
        return self._columns

    def close(self) -> None:
        """Close this process's handle (it reopens on the next access)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None
        self._columns = {}
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # h5py handles cannot be pickled; each spawned worker opens its own
        state["_columns"] = {}
        state["_pid"] = None
        return state

    # -- items -----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.clip_starts)

    def _prepare(self, name: str, values: np.ndarray) -> np.ndarray:
        """Cast to float32, z-score if stats were given, then turn NaN (missing values) into 0."""
        values = values.astype(np.float32, copy=False)
        if name in self._norm:
            mean, std = self._norm[name]
            values = (values - mean) / std
        return np.where(np.isnan(values), np.float32(0.0), values).astype(np.float32, copy=False)

    @staticmethod
    def _read_frames(column: h5py.Dataset, start: int, step: int, count: int) -> np.ndarray:
        """Rows start, start + step, ... (count of them), read one by one.

        h5py's strided slice (`column[a:b:step]`) walks a slow selection path: about 3 ms per clip against
        0.1 ms for separate row reads of a frame-chunked column, which made data loading the bottleneck.
        """
        return np.stack([column[start + k * step] for k in range(count)])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        size = len(self.clip_starts)
        index = int(index)
        if index < -size or index >= size:
            raise IndexError(f"clip index {index} out of range for {size} clips")
        start = int(self.clip_starts[index])
        stop = start + self.span
        step = self.frameskip
        columns = self._datasets()
        T = self.num_frames

        pixels = self._read_frames(columns[self.pixels_key], start, step, T)  # (T, H, W, 3) uint8
        pixels = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))  # (T, 3, H, W), channels first
        item = {"pixels": torch.from_numpy(pixels)}

        action = columns[self.action_key][start:stop]  # (T * frameskip, A)
        action = self._prepare(self.action_key, action)
        # Row-major: block t = [a_{r + t*fs}, ..., a_{r + t*fs + fs - 1}] flattened, (T, frameskip * A).
        item["action"] = torch.from_numpy(np.ascontiguousarray(action.reshape(T, self.action_block_dim)))

        for name, dim in self.extra_dims.items():
            values = self._read_frames(columns[name], start, step, T).reshape(T, dim)  # (T, P)
            item[name] = torch.from_numpy(np.ascontiguousarray(self._prepare(name, values)))
        return item

    def __repr__(self) -> str:
        return (
            f"ClipDataset({str(self.path)!r}, clips={len(self)}, episodes={len(self.episodes)}, "
            f"T={self.num_frames}, frameskip={self.frameskip}, image={self.image_shape})"
        )
