"""Per-dimension normalisation statistics for non-pixel columns (action, proprio, state).

The model sees z-scored actions (docs/reference.md section 3) and the planner must undo that before an environment
sees a planned action, so the statistics are part of a run: `NormStats.to_dict` gives plain lists for the run
directory and `NormStats.from_dict` reads them back. `compute_stats` streams a column in chunks (datasets can
be far larger than memory) and ignores NaN entries (other tools store NaN as an episode's last action).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from lewm.data.hdf5 import EpisodeFile
from lewm.errors import LewmError

STD_FLOOR = 1e-6
"""Smallest standard deviation used, so near-constant dimensions do not blow up to huge values."""

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass
class NormStats:
    """Mean and standard deviation per column, each a float64 array of shape (D,) (D values per row)."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @property
    def columns(self) -> list[str]:
        """Names of the columns these statistics cover."""
        return list(self.mean)

    def _get(self, name: str, x: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.mean or name not in self.std:
            have = ", ".join(self.columns) or "none"
            raise LewmError(f"normalisation stats: no column '{name}' (have: {have})")
        mean, std = self.mean[name], self.std[name]
        if x.ndim == 0 or x.shape[-1] != mean.shape[0]:
            raise LewmError(
                f"normalisation stats: column '{name}' has {mean.shape[0]} dims but the array has shape "
                f"{tuple(x.shape)} (last dim must match)"
            )
        return mean, std

    def normalize(self, name: str, x: ArrayT) -> ArrayT:
        """(x - mean) / std over the last dim (..., D); NaN stays NaN (the caller decides what it means)."""
        mean, std = self._get(name, x)
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.float32
            return (x.to(dtype) - torch.as_tensor(mean, dtype=dtype, device=x.device)) / torch.as_tensor(
                std, dtype=dtype, device=x.device
            )
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return ((x - mean) / std).astype(dtype, copy=False)

    def denormalize(self, name: str, x: ArrayT) -> ArrayT:
        """x * std + mean over the last dim (..., D): back to the units the environment uses."""
        mean, std = self._get(name, x)
        if isinstance(x, torch.Tensor):
            dtype = x.dtype if x.is_floating_point() else torch.float32
            return x.to(dtype) * torch.as_tensor(std, dtype=dtype, device=x.device) + torch.as_tensor(
                mean, dtype=dtype, device=x.device
            )
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        return (x * std + mean).astype(dtype, copy=False)

    def to_dict(self) -> dict[str, dict[str, list[float]]]:
        """Plain nested lists (JSON/YAML safe) for the run directory."""
        return {
            "mean": {name: [float(v) for v in value] for name, value in self.mean.items()},
            "std": {name: [float(v) for v in value] for name, value in self.std.items()},
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "normalisation stats") -> NormStats:
        """Rebuild from `to_dict` output; a malformed mapping raises a `LewmError` naming `where`."""
        if not isinstance(values, Mapping) or set(values) != {"mean", "std"}:
            raise LewmError(f"{where}: expected a mapping with keys 'mean' and 'std'")
        mean, std = values["mean"], values["std"]
        if not isinstance(mean, Mapping) or not isinstance(std, Mapping) or set(mean) != set(std):
            raise LewmError(f"{where}: 'mean' and 'std' must map the same column names to lists")
        out_mean: dict[str, np.ndarray] = {}
        out_std: dict[str, np.ndarray] = {}
        for name in mean:
            try:
                m = np.asarray(mean[name], dtype=np.float64).reshape(-1)
                s = np.asarray(std[name], dtype=np.float64).reshape(-1)
            except (TypeError, ValueError) as error:
                raise LewmError(f"{where}: column '{name}' is not a list of numbers") from error
            if m.shape != s.shape:
                raise LewmError(f"{where}: column '{name}' has {m.size} means but {s.size} stds")
            if not (np.all(np.isfinite(s)) and np.all(s > 0)):
                raise LewmError(f"{where}: column '{name}' has a std that is not a positive number")
            out_mean[str(name)], out_std[str(name)] = m, s
        return cls(mean=out_mean, std=out_std)


def _chunks(num_rows: int, rows: np.ndarray | None, chunk_rows: int):
    """Yield (start, stop, local_rows): a slice of the file and which of its rows to use (None = all)."""
    if rows is None:
        for start in range(0, num_rows, chunk_rows):
            yield start, min(start + chunk_rows, num_rows), None
        return
    for first in range(0, len(rows), chunk_rows):
        chosen = rows[first : first + chunk_rows]
        start, stop = int(chosen[0]), int(chosen[-1]) + 1
        # Chosen rows may span many file rows when `rows` is sparse: split so that each read stays small.
        while start < stop:
            end = min(start + chunk_rows, stop)
            lo, hi = np.searchsorted(chosen, [start, end])
            if hi > lo:
                yield start, end, chosen[lo:hi] - start
            start = end


def compute_stats(
    file: EpisodeFile, columns: Sequence[str], rows: np.ndarray | None = None, chunk_rows: int = 65536
) -> NormStats:
    """Per-dimension mean/std (population, NaN ignored) of each column, read `chunk_rows` rows at a time.

    `rows` restricts the statistics to some rows (e.g. the training episodes' rows from
    `EpisodeFile.episode_rows`): an int array (sorted here if it is not; a repeated row counts once), or
    None for all rows. A dimension whose values are
    all equal (or all NaN) gets std 1.0 so that normalising it is a pure shift; otherwise std is floored at
    `STD_FLOOR`.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if rows is not None:
        rows = np.asarray(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"rows must be a 1-D integer array, got shape {rows.shape} dtype {rows.dtype}")
        if len(rows) == 0:
            raise ValueError("rows is empty: no rows to compute statistics over")
        if np.any(np.diff(rows) <= 0):
            rows = np.unique(rows)  # sorted reads keep chunking simple; a repeated row counts once
        if rows[0] < 0 or rows[-1] >= file.num_rows:
            raise ValueError(f"rows must lie in [0, {file.num_rows}), got {rows[0]}..{rows[-1]}")
    means: dict[str, np.ndarray] = {}
    stds: dict[str, np.ndarray] = {}
    for name in columns:
        dataset = file.dataset(name)
        if not (np.issubdtype(dataset.dtype, np.number) or dataset.dtype == np.bool_):
            raise LewmError(f"{file.path}: column '{name}' has dtype {dataset.dtype}, expected numbers")
        dim = file.column_dim(name)
        # Running per-dimension count, mean and sum of squared deviations, merged chunk by chunk
        # (Chan et al.), in float64 so millions of rows do not lose precision.
        count = np.zeros(dim, dtype=np.float64)
        mean = np.zeros(dim, dtype=np.float64)
        m2 = np.zeros(dim, dtype=np.float64)
        low = np.full(dim, np.inf)
        high = np.full(dim, -np.inf)
        for start, stop, local in _chunks(file.num_rows, rows, chunk_rows):
            block = np.asarray(dataset[start:stop], dtype=np.float64).reshape(stop - start, dim)  # (n, D)
            if local is not None:
                block = block[local]
            valid = ~np.isnan(block)
            n = valid.sum(axis=0).astype(np.float64)
            if not n.any():
                continue
            safe_n = np.maximum(n, 1.0)
            block_mean = np.where(valid, block, 0.0).sum(axis=0) / safe_n
            block_m2 = np.where(valid, (block - block_mean) ** 2, 0.0).sum(axis=0)
            total = count + n
            delta = block_mean - mean
            safe_total = np.maximum(total, 1.0)
            mean = mean + delta * n / safe_total
            m2 = m2 + block_m2 + delta**2 * count * n / safe_total
            count = total
            low = np.minimum(low, np.where(valid, block, np.inf).min(axis=0))
            high = np.maximum(high, np.where(valid, block, -np.inf).max(axis=0))
        std = np.sqrt(m2 / np.maximum(count, 1.0))
        std = np.maximum(std, STD_FLOOR)
        constant = (count == 0) | (low == high)
        std[constant] = 1.0
        if np.any(count == 0):
            mean[count == 0] = 0.0
        means[name] = mean
        stds[name] = std
    return NormStats(mean=means, std=stds)
