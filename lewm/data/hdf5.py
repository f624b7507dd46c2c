"""Read and write episode files in the community HDF5 layout (REFERENCE section 4).

One ``.h5`` file holds flat top-level datasets with one row per environment step, all episodes concatenated:
``pixels`` (N, H, W, 3) uint8, ``action`` (N, A) float, optional ``proprio``/``state`` (N, P), the per-row
index columns ``episode_idx`` (or ``ep_idx``) and ``step_idx``, and the per-episode index arrays ``ep_len``
and ``ep_offset`` (E,) that give each episode's length and first row.

`EpisodeFile` checks a file once, up front, so that a bad file fails with one line naming the file, the
column and the value instead of a shape error deep inside a DataLoader worker. It never loads pixels.
`EpisodeWriter` streams episodes to disk one at a time (a dataset never has to fit in memory) and makes
new files appear atomically, so a crashed collection never leaves a half-written file behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import h5py
import numpy as np

from lewm.errors import LewmError

EPISODE_KEYS = ("episode_idx", "ep_idx")
"""Accepted names of the per-row episode index column (the first is what `EpisodeWriter` writes)."""
STEP_KEY = "step_idx"
"""Optional per-row column: the step number of each row inside its episode."""
INDEX_KEYS = ("ep_len", "ep_offset")
"""Per-episode index arrays (E,): each episode's length and first row."""
RESERVED_KEYS = frozenset((*EPISODE_KEYS, STEP_KEY, *INDEX_KEYS))
"""Names the writer manages itself; an episode may not pass them as extra columns."""

Mode = Literal["x", "w", "a"]
_COMPRESSIONS = (None, "gzip", "lzf")


def _exists_message(path: Path) -> str:
    return f"{path}: file exists; pass overwrite (mode='w') or append (mode='a') explicitly"


def _shape_text(shape: tuple[int, ...]) -> str:
    """Render a shape like numpy does, but with `(N,)` for one-element tuples kept readable."""
    return str(tuple(int(s) for s in shape))


class EpisodeFile:
    """A community-layout HDF5 file, opened read-only and validated at construction.

    Only the small per-episode index arrays (``ep_len``, ``ep_offset``) are read into memory; pixels and
    other per-row columns are checked by shape and dtype alone, so opening a 100 GB file is instant.
    """

    def __init__(self, path: str | os.PathLike[str], pixels_key: str = "pixels", action_key: str = "action"):
        self.path = Path(path)
        self.pixels_key = pixels_key
        self.action_key = action_key
        if not self.path.exists():
            raise LewmError(f"{self.path}: file does not exist")
        if not self.path.is_file():
            raise LewmError(f"{self.path}: not a file")
        try:
            is_hdf5 = h5py.is_hdf5(self.path)
        except OSError as error:
            raise LewmError(f"{self.path}: cannot read file ({error})") from error
        if not is_hdf5:
            raise LewmError(f"{self.path}: not an HDF5 file")
        try:
            self._file: h5py.File | None = h5py.File(self.path, "r")
        except OSError as error:
            raise LewmError(f"{self.path}: cannot open HDF5 file ({error})") from error
        try:
            self._validate()
        except BaseException:
            self.close()
            raise

    # -- validation ------------------------------------------------------------------------------------

    def _fail(self, message: str) -> LewmError:
        return LewmError(f"{self.path}: {message}")

    def _validate(self) -> None:
        """Check the layout; on success set the cached index arrays and sizes."""
        file = self.file
        self.columns: list[str] = [name for name, item in file.items() if isinstance(item, h5py.Dataset)]
        for key in (self.pixels_key, self.action_key, *INDEX_KEYS):
            if key not in self.columns:
                raise self._fail(f"missing column '{key}'")

        pixels = file[self.pixels_key]
        if pixels.dtype != np.uint8:
            raise self._fail(f"'{self.pixels_key}' has dtype {pixels.dtype}, expected uint8")
        if pixels.ndim != 4 or pixels.shape[3] != 3:
            raise self._fail(
                f"'{self.pixels_key}' has shape {_shape_text(pixels.shape)}, expected (N, H, W, 3)"
            )
        self.num_rows: int = int(pixels.shape[0])
        if self.num_rows == 0:
            raise self._fail(f"empty file: '{self.pixels_key}' has no rows")
        if pixels.shape[1] < 1 or pixels.shape[2] < 1:
            raise self._fail(f"'{self.pixels_key}' has shape {_shape_text(pixels.shape)}: empty images")
        self.image_shape: tuple[int, int, int] = (int(pixels.shape[1]), int(pixels.shape[2]), 3)

        # Every dataset except the per-episode index arrays is a per-row column and must have N rows.
        for name in self.columns:
            if name in INDEX_KEYS:
                continue
            dataset = file[name]
            if dataset.ndim == 0:
                raise self._fail(f"column '{name}' is a scalar, expected one row per step")
            if dataset.shape[0] != self.num_rows:
                raise self._fail(
                    f"column '{name}' has {dataset.shape[0]} rows but '{self.pixels_key}' has {self.num_rows}"
                )

        action = file[self.action_key]
        if not np.issubdtype(action.dtype, np.floating):
            raise self._fail(f"'{self.action_key}' has dtype {action.dtype}, expected a float type")
        if action.ndim != 2 or action.shape[1] < 1:
            raise self._fail(f"'{self.action_key}' has shape {_shape_text(action.shape)}, expected (N, A)")
        self.action_dim: int = int(action.shape[1])

        index = {}
        for key in INDEX_KEYS:
            dataset = file[key]
            if dataset.ndim != 1:
                raise self._fail(f"'{key}' has shape {_shape_text(dataset.shape)}, expected (E,)")
            if dataset.dtype.kind not in "iu":
                raise self._fail(f"'{key}' has dtype {dataset.dtype}, expected an integer type")
            index[key] = np.asarray(dataset[()], dtype=np.int64)
        ep_len, ep_offset = index["ep_len"], index["ep_offset"]
        if len(ep_len) != len(ep_offset):
            raise self._fail(f"'ep_len' has {len(ep_len)} entries but 'ep_offset' has {len(ep_offset)}")
        if len(ep_len) == 0:
            raise self._fail("empty file: 'ep_len' has no episodes")
        bad = np.flatnonzero(ep_len < 1)
        if len(bad):
            raise self._fail(f"'ep_len' of episode {bad[0]} is {ep_len[bad[0]]}, expected >= 1")
        bad = np.flatnonzero(ep_offset < 0)
        if len(bad):
            raise self._fail(f"'ep_offset' of episode {bad[0]} is {ep_offset[bad[0]]}, expected >= 0")
        ends = ep_offset + ep_len
        bad = np.flatnonzero(ends > self.num_rows)
        if len(bad):
            e = bad[0]
            raise self._fail(
                f"episode {e} has 'ep_offset' {ep_offset[e]} + 'ep_len' {ep_len[e]} = {ends[e]}, "
                f"beyond the {self.num_rows} rows of '{self.pixels_key}'"
            )
        total = int(ep_len.sum())
        if total != self.num_rows:
            raise self._fail(f"sum of 'ep_len' is {total} but '{self.pixels_key}' has {self.num_rows} rows")
        order = np.argsort(ep_offset, kind="stable")
        overlap = np.flatnonzero(ep_offset[order][1:] < ends[order][:-1])
        if len(overlap):
            first, second = order[overlap[0]], order[overlap[0] + 1]
            raise self._fail(
                f"'ep_offset' of episode {second} is {ep_offset[second]}, inside episode {first} "
                f"(rows {ep_offset[first]}..{ends[first] - 1})"
            )
        self.ep_len: np.ndarray = ep_len  # int64 (E,)
        self.ep_offset: np.ndarray = ep_offset  # int64 (E,)
        self.episode_key: str | None = next((k for k in EPISODE_KEYS if k in self.columns), None)

    # -- access ----------------------------------------------------------------------------------------

    @property
    def file(self) -> h5py.File:
        """The open h5py handle (raises once closed)."""
        if self._file is None:
            raise LewmError(f"{self.path}: file is closed")
        return self._file

    @property
    def num_episodes(self) -> int:
        """E, the number of episodes."""
        return len(self.ep_len)

    def dataset(self, name: str) -> h5py.Dataset:
        """The h5py dataset of a column (read lazily; slice it to read rows)."""
        if name not in self.columns:
            raise self._fail(f"missing column '{name}'")
        return self.file[name]

    def column_dim(self, name: str) -> int:
        """Values per row of a per-row column (product of its trailing dims; 1 for a 1-D column)."""
        if name in INDEX_KEYS:
            raise self._fail(f"'{name}' is a per-episode index array, not a per-row column")
        return int(np.prod(self.dataset(name).shape[1:], dtype=np.int64))

    def episode_rows(self, episodes: np.ndarray | Iterable[int] | None = None) -> np.ndarray:
        """Sorted int64 row indices of the given episodes (all when None), e.g. to compute training stats."""
        ids = np.arange(self.num_episodes) if episodes is None else np.asarray(list(episodes), dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_episodes):
            raise self._fail(f"episode id out of range: file has {self.num_episodes} episodes")
        if ids.size == 0:
            return np.zeros(0, dtype=np.int64)
        rows = np.concatenate([np.arange(self.ep_offset[e], self.ep_offset[e] + self.ep_len[e]) for e in ids])
        return np.unique(rows).astype(np.int64)

    def close(self) -> None:
        """Close the HDF5 handle (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> EpisodeFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"EpisodeFile({str(self.path)!r}, rows={self.num_rows}, episodes={self.num_episodes}, "
            f"image={self.image_shape}, action_dim={self.action_dim})"
        )


class EpisodeWriter:
    """Write episodes one at a time into a community-layout file.

    Modes: ``"x"`` creates a new file and refuses an existing one, ``"w"`` replaces an existing file,
    ``"a"`` appends to an existing valid file whose columns match the episodes. New files ("x"/"w") are
    written to a temp file beside `path` and renamed into place by a successful `close`, so `path` either
    keeps its old content or holds the complete new file. In "a" mode rows are written before the
    ``ep_len``/``ep_offset`` entries that make them visible, and an exception inside the ``with`` block
    truncates the file back to the episodes it had when opened.
    """

    def __init__(self, path: str | os.PathLike[str], mode: Mode = "x", compression: str | None = None):
        self.path = Path(path)
        if mode not in ("x", "w", "a"):
            raise LewmError(f"{self.path}: mode = {mode!r} is invalid: must be 'x', 'w' or 'a'")
        if compression not in _COMPRESSIONS:
            raise LewmError(
                f"{self.path}: compression = {compression!r} is invalid: must be None, 'gzip' or 'lzf'"
            )
        self.mode = mode
        self.compression = compression
        self._file: h5py.File | None = None
        self._temp: Path | None = None
        self._schema: dict[str, tuple[int, ...]] | None = None  # column -> per-row shape
        self._episode_key = EPISODE_KEYS[0]
        self._has_step = True
        self._start_rows = 0
        self._start_episodes = 0
        self.num_rows = 0
        self.num_episodes = 0

        if mode == "x" and self.path.exists():
            raise LewmError(_exists_message(self.path))
        if mode == "a":
            self._open_append()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A hidden, unique sibling: same filesystem (so the rename is atomic) and default permissions.
            self._temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            self._file = h5py.File(self._temp, "x")

    def _open_append(self) -> None:
        if not self.path.exists():
            raise LewmError(f"{self.path}: file does not exist; cannot append (use mode='x' to create it)")
        with EpisodeFile(self.path) as existing:
            schema = {}
            for name in existing.columns:
                if name in RESERVED_KEYS:
                    continue
                schema[name] = tuple(int(s) for s in existing.dataset(name).shape[1:])
            self._episode_key = existing.episode_key or ""
            self._has_step = STEP_KEY in existing.columns
            self._start_rows = existing.num_rows
            self._start_episodes = existing.num_episodes
        self._schema = schema
        try:
            self._file = h5py.File(self.path, "a")
        except OSError as error:
            raise LewmError(f"{self.path}: cannot open for appending ({error})") from error
        for name in self._growing_columns():
            if self._file[name].maxshape[0] is not None:
                self._file.close()
                self._file = None
                raise LewmError(
                    f"{self.path}: column '{name}' cannot grow (it needs chunked storage with an unlimited "
                    "first dimension); write a new file instead"
                )
        self.num_rows = self._start_rows
        self.num_episodes = self._start_episodes

    def _growing_columns(self) -> list[str]:
        """Every dataset that gets longer as episodes are added."""
        assert self._schema is not None
        names = list(self._schema) + list(INDEX_KEYS)
        if self._episode_key:
            names.append(self._episode_key)
        if self._has_step:
            names.append(STEP_KEY)
        return names

    # -- episodes --------------------------------------------------------------------------------------

    def _fail(self, message: str) -> LewmError:
        return LewmError(f"{self.path}: episode {self.num_episodes}: {message}")

    def _check_episode(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Turn an episode's arrays into numpy with the file's dtypes, or raise naming the bad column."""
        if "pixels" not in columns:
            raise self._fail("missing column 'pixels'")
        if "action" not in columns:
            raise self._fail("missing column 'action'")
        for name in columns:
            if name in RESERVED_KEYS:
                raise self._fail(f"column '{name}' is written by the writer itself; do not pass it")
        arrays = {name: np.asarray(value) for name, value in columns.items()}

        pixels = arrays["pixels"]
        if pixels.dtype != np.uint8:
            raise self._fail(f"'pixels' has dtype {pixels.dtype}, expected uint8")
        if pixels.ndim != 4 or pixels.shape[3] != 3:
            raise self._fail(f"'pixels' has shape {_shape_text(pixels.shape)}, expected (T, H, W, 3)")
        length = pixels.shape[0]
        if length < 1:
            raise self._fail("'pixels' has no rows: an episode needs at least one step")
        action = arrays["action"]
        if action.ndim != 2:
            raise self._fail(f"'action' has shape {_shape_text(action.shape)}, expected (T, A)")
        for name, array in arrays.items():
            if name != "pixels" and not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
                raise self._fail(f"column '{name}' has dtype {array.dtype}, expected numbers")
            if array.ndim == 0:
                raise self._fail(f"column '{name}' is a scalar, expected one row per step")
            if array.shape[0] != length:
                raise self._fail(f"column '{name}' has {array.shape[0]} rows but 'pixels' has {length}")
        return arrays

    def _create_columns(self, arrays: dict[str, np.ndarray]) -> None:
        """Create the datasets of a new file from its first episode (all growable along rows)."""
        assert self._file is not None
        file = self._file
        schema: dict[str, tuple[int, ...]] = {}
        for name, array in arrays.items():
            row_shape = tuple(int(s) for s in array.shape[1:])
            schema[name] = row_shape
            if name == "pixels":
                file.create_dataset(
                    name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=np.uint8,
                    chunks=(1, *row_shape), compression=self.compression,
                )
            else:
                file.create_dataset(
                    name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=np.float32, chunks=True
                )
        for name in (self._episode_key, STEP_KEY, *INDEX_KEYS):
            file.create_dataset(name, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=True)
        self._schema = schema

    def _check_schema(self, arrays: dict[str, np.ndarray]) -> None:
        """An episode must have exactly the file's columns with the same per-row shapes."""
        assert self._schema is not None
        for name in self._schema:
            if name not in arrays:
                raise self._fail(f"missing column '{name}' that the file has")
        for name, array in arrays.items():
            if name not in self._schema:
                have = ", ".join(self._schema)
                raise self._fail(f"column '{name}' is not in the file (file columns: {have})")
            expected = self._schema[name]
            got = tuple(int(s) for s in array.shape[1:])
            if got != expected:
                raise self._fail(
                    f"column '{name}' has per-row shape {_shape_text(got)}, "
                    f"but the file has {_shape_text(expected)}"
                )

    def add_episode(self, pixels: np.ndarray, action: np.ndarray, **extras: np.ndarray) -> None:
        """Append one episode: pixels uint8 (T, H, W, 3), action (T, A), extras (T, ...) e.g. proprio."""
        self.add_columns({"pixels": pixels, "action": action, **extras})

    def add_columns(self, columns: Mapping[str, Any]) -> None:
        """Append one episode given as a mapping of column name to array (what `write_episodes` passes)."""
        if self._file is None:
            raise LewmError(f"{self.path}: writer is closed")
        arrays = self._check_episode(columns)
        if self._schema is None:
            self._create_columns(arrays)
        else:
            self._check_schema(arrays)
        file = self._file
        length = int(arrays["pixels"].shape[0])
        start, stop = self.num_rows, self.num_rows + length
        # Rows first, then the index arrays that make them part of an episode.
        for name, array in arrays.items():
            dataset = file[name]
            dataset.resize(stop, axis=0)
            dataset[start:stop] = array.astype(dataset.dtype, copy=False)
        if self._episode_key:
            dataset = file[self._episode_key]
            dataset.resize(stop, axis=0)
            dataset[start:stop] = self.num_episodes
        if self._has_step:
            dataset = file[STEP_KEY]
            dataset.resize(stop, axis=0)
            dataset[start:stop] = np.arange(length)
        for name, value in (("ep_offset", start), ("ep_len", length)):
            dataset = file[name]
            dataset.resize(self.num_episodes + 1, axis=0)
            dataset[self.num_episodes] = value
        self.num_rows = stop
        self.num_episodes += 1

    # -- finishing -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the file: flush, and for a new file move it into place. Idempotent."""
        if self._file is None:
            return
        if self._temp is None:  # append mode: the data already lives at path
            self._file.close()
            self._file = None
            return
        if self.num_episodes == 0:
            self.abort()
            raise LewmError(f"{self.path}: no episodes were written; not creating an empty file")
        self._file.close()
        self._file = None
        temp, self._temp = self._temp, None
        try:
            descriptor = os.open(temp, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            if self.mode == "x" and self.path.exists():
                raise LewmError(_exists_message(self.path))
            os.replace(temp, self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Discard this session's work: delete a new file's temp file, or truncate an append back."""
        if self._file is None:
            return
        if self._temp is not None:
            self._file.close()
            self._file = None
            self._temp.unlink(missing_ok=True)
            self._temp = None
            return
        try:
            if self.num_rows != self._start_rows or self.num_episodes != self._start_episodes:
                for name in self._growing_columns():
                    size = self._start_episodes if name in INDEX_KEYS else self._start_rows
                    self._file[name].resize(size, axis=0)
        finally:
            self._file.close()
            self._file = None
            self.num_rows, self.num_episodes = self._start_rows, self._start_episodes

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def write_episodes(
    path: str | os.PathLike[str],
    episodes: Iterable[Mapping[str, np.ndarray]],
    mode: Mode = "x",
    compression: str | None = None,
) -> int:
    """Write episode dicts (``pixels``, ``action``, extras) to one file; return how many were written."""
    with EpisodeWriter(path, mode=mode, compression=compression) as writer:
        for episode in episodes:
            writer.add_columns(episode)
        return writer.num_episodes
