"""Read and write episode files in the community HDF5 layout (docs/reference.md section 4).

One ``.h5`` file holds flat top-level datasets with one row per environment step, all episodes concatenated:
``pixels`` (N, H, W, 3) uint8, ``action`` (N, A) float, optional ``proprio``/``state`` (N, P), the per-row
index columns ``episode_idx`` (or ``ep_idx``) and ``step_idx``, and the per-episode index arrays ``ep_len``
and ``ep_offset`` (E,) that give each episode's length and first row.

`EpisodeFile` checks a file once, up front, so that a bad file fails with one line naming the file, the
column and the value instead of a shape error deep inside a DataLoader worker. It never loads pixels.
`EpisodeWriter` streams episodes to disk one at a time (a dataset never has to fit in memory), either all or
nothing (a new file appears complete, by rename) or resumably (in place, committed batch by batch, so a killed
process leaves the episodes of its last commit). The root attribute `COMPLETE_KEY` marks how many episodes are
complete; readers ignore rows and index entries after them, which only an interrupted write leaves behind.
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
COMPLETE_KEY = "complete_episodes"
"""Root attribute kept by `EpisodeWriter`: the leading ``ep_len``/``ep_offset`` entries that are complete
episodes. Entries and rows after them are what an interrupted write left; files without it count in full."""

Mode = Literal["x", "w", "a"]
_COMPRESSIONS = (None, "gzip", "lzf")


def _exists_message(path: Path) -> str:
    return f"{path}: file exists; pass overwrite (mode='w') or append (mode='a') explicitly"


def file_attributes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The root attributes of an HDF5 file (what produced it, `COMPLETE_KEY`), read without validating columns:
    they are what tells a file interrupted before its first complete episode from someone else's file."""
    try:
        with h5py.File(path, "r") as file:
            return {name: _plain(value) for name, value in file.attrs.items()}
    except OSError as error:
        raise LewmError(f"{path}: cannot open HDF5 file ({error})") from error


def _plain(value: Any) -> Any:
    """A numpy scalar attribute as the Python number it holds (arrays and strings stay as they are)."""
    return value.item() if isinstance(value, np.generic) else value


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
        """Check the layout step by step, so each failure names its column; on success set the columns, sizes and
        index arrays. With a `COMPLETE_KEY` attribute only that many leading episodes count (see `_complete`)."""
        file = self.file
        self.columns: list[str] = [name for name, item in file.items() if isinstance(item, h5py.Dataset)]
        complete = self._complete()
        for key in (self.pixels_key, self.action_key, *INDEX_KEYS):
            if key not in self.columns:
                raise self._fail(f"missing column '{key}'")
        pixel_rows = self._check_pixels()
        self.action_dim: int = self._check_action()
        ep_len, ep_offset = self._read_index(complete)
        # An interrupted write may leave rows past its last complete episode: only the complete ones count.
        self.num_rows: int = pixel_rows if complete is None else int(ep_len.sum())
        self._check_row_counts(exact=complete is None)
        self._check_episodes(ep_len, ep_offset)
        self.ep_len: np.ndarray = ep_len  # int64 (E,)
        self.ep_offset: np.ndarray = ep_offset  # int64 (E,)
        self.episode_key: str | None = next((k for k in EPISODE_KEYS if k in self.columns), None)

    def _complete(self) -> int | None:
        """The `COMPLETE_KEY` attribute (None when absent: a file of another tool, all of it counts)."""
        if COMPLETE_KEY not in self.file.attrs:
            return None
        value = self.file.attrs[COMPLETE_KEY]
        if not (np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype, np.integer) and value >= 0):
            raise self._fail(f"attribute '{COMPLETE_KEY}' = {value!r} is invalid: must be an integer >= 0")
        if value == 0:
            raise self._fail(f"empty file: no complete episode ('{COMPLETE_KEY}' is 0: an interrupted write)")
        return int(value)

    def _check_pixels(self) -> int:
        """Pixels must be uint8 (N, H, W, 3) with N >= 1; sets `image_shape` and returns N."""
        pixels = self.file[self.pixels_key]
        if pixels.dtype != np.uint8:
            raise self._fail(f"'{self.pixels_key}' has dtype {pixels.dtype}, expected uint8")
        if pixels.ndim != 4 or pixels.shape[3] != 3:
            raise self._fail(
                f"'{self.pixels_key}' has shape {_shape_text(pixels.shape)}, expected (N, H, W, 3)"
            )
        if pixels.shape[0] == 0:
            raise self._fail(f"empty file: '{self.pixels_key}' has no rows")
        if pixels.shape[1] < 1 or pixels.shape[2] < 1:
            raise self._fail(f"'{self.pixels_key}' has shape {_shape_text(pixels.shape)}: empty images")
        self.image_shape: tuple[int, int, int] = (int(pixels.shape[1]), int(pixels.shape[2]), 3)
        return int(pixels.shape[0])

    def _check_action(self) -> int:
        """Actions must be float (N, A) with A >= 1; returns A."""
        action = self.file[self.action_key]
        if not np.issubdtype(action.dtype, np.floating):
            raise self._fail(f"'{self.action_key}' has dtype {action.dtype}, expected a float type")
        if action.ndim != 2 or action.shape[1] < 1:
            raise self._fail(f"'{self.action_key}' has shape {_shape_text(action.shape)}, expected (N, A)")
        return int(action.shape[1])

    def _read_index(self, complete: int | None) -> tuple[np.ndarray, np.ndarray]:
        """(ep_len, ep_offset) as int64 (E,): every entry, or the first `complete` ones."""
        index = {}
        for key in INDEX_KEYS:
            dataset = self.file[key]
            if dataset.ndim != 1:
                raise self._fail(f"'{key}' has shape {_shape_text(dataset.shape)}, expected (E,)")
            if dataset.dtype.kind not in "iu":
                raise self._fail(f"'{key}' has dtype {dataset.dtype}, expected an integer type")
            if complete is not None and complete > len(dataset):
                raise self._fail(f"'{COMPLETE_KEY}' is {complete} but '{key}' has {len(dataset)} entries")
            index[key] = np.asarray(dataset[:complete], dtype=np.int64)
        ep_len, ep_offset = index["ep_len"], index["ep_offset"]
        if len(ep_len) != len(ep_offset):
            raise self._fail(f"'ep_len' has {len(ep_len)} entries but 'ep_offset' has {len(ep_offset)}")
        if len(ep_len) == 0:
            raise self._fail("empty file: 'ep_len' has no episodes")
        return ep_len, ep_offset

    def _check_row_counts(self, exact: bool) -> None:
        """Every dataset but the index arrays is a per-row column: it has `num_rows` rows, or at least that many
        when not `exact` (the rows of an interrupted write may follow the complete episodes)."""
        for name in self.columns:
            if name in INDEX_KEYS:
                continue
            dataset = self.file[name]
            if dataset.ndim == 0:
                raise self._fail(f"column '{name}' is a scalar, expected one row per step")
            if exact and dataset.shape[0] != self.num_rows:
                raise self._fail(
                    f"column '{name}' has {dataset.shape[0]} rows but '{self.pixels_key}' has {self.num_rows}"
                )
            if not exact and dataset.shape[0] < self.num_rows:
                raise self._fail(
                    f"column '{name}' has {dataset.shape[0]} rows but the complete episodes need {self.num_rows}"
                )

    def _check_episodes(self, ep_len: np.ndarray, ep_offset: np.ndarray) -> None:
        """Each episode has >= 1 row inside the file, the lengths add up to the rows, and no two overlap."""
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

    Modes: ``"x"`` creates a new file and refuses an existing one, ``"w"`` replaces an existing file, ``"a"``
    appends to an existing valid file whose columns match the episodes (dropping what an interrupted write left
    after its complete episodes). Each episode's rows go to disk first, then its ``ep_len``/``ep_offset`` entries;
    readers count it once a commit has raised the root attribute `COMPLETE_KEY` over it (`close` commits).

    ``atomic=True`` (the default), all or nothing: a new file is written to a hidden temp file beside `path` and
    renamed into place by a successful `close`, so `path` keeps its old content until the new file is complete;
    an exception inside the ``with`` block deletes the temp file, or truncates an append back to the episodes the
    file had when opened.

    ``atomic=False``, resumable: written straight into `path` (no temp file), and `commit()` makes the episodes
    added so far permanent. A process killed at any moment, even by SIGKILL, leaves `path` a valid file holding
    the episodes of its last commit; an exception inside the ``with`` block drops the episodes added since, and
    removes a file this writer created if nothing was committed. `lewm collect` writes this way.

    `attrs` are root attributes of a new file (e.g. the settings that produced it), written with it; `attrs`
    (the property) reaches them later, in any mode.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: Mode = "x",
        compression: str | None = None,
        atomic: bool = True,
        attrs: Mapping[str, Any] | None = None,
    ):
        self.path = Path(path)
        if mode not in ("x", "w", "a"):
            raise LewmError(f"{self.path}: mode = {mode!r} is invalid: must be 'x', 'w' or 'a'")
        if compression not in _COMPRESSIONS:
            raise LewmError(
                f"{self.path}: compression = {compression!r} is invalid: must be None, 'gzip' or 'lzf'"
            )
        self.mode = mode
        self.compression = compression
        self.atomic = atomic
        self._file: h5py.File | None = None
        self._temp: Path | None = None  # atomic new file: renamed onto path by close
        self._created = False  # atomic=False new file: abort removes it while nothing is committed
        self._schema: dict[str, tuple[int, ...]] | None = None  # column -> per-row shape
        self._episode_key = EPISODE_KEYS[0]
        self._has_step = True
        # What abort returns to: the file as opened, or (atomic=False) as last committed.
        self._kept_rows = 0
        self._kept_episodes = 0
        self.num_rows = 0
        self.num_episodes = 0

        if mode == "x" and self.path.exists():
            raise LewmError(_exists_message(self.path))
        if mode == "a":
            self._open_append()
        else:
            self._create(attrs or {})
        self._open().flush()

    def _create(self, attrs: Mapping[str, Any]) -> None:
        """Open a new file holding only its root attributes: `attrs` and `COMPLETE_KEY` = 0. Atomic: a temp
        sibling that `close` renames; in place: `path` itself, created whole (see `_create_in_place`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.atomic:
                # A hidden, unique sibling: same filesystem (so the rename is atomic) and default permissions.
                self._temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
                self._file = _open_for_writing(self._temp, "x")
                self._file.attrs.update({**attrs, COMPLETE_KEY: np.int64(0)})
            else:
                _create_in_place(self.path, {**attrs, COMPLETE_KEY: np.int64(0)}, replace=self.mode == "w")
                self._created = True
                self._file = _open_for_writing(self.path, "a")
        except OSError as error:
            if self._created:
                self.path.unlink(missing_ok=True)
            elif self.mode == "x" and self.path.exists():
                raise LewmError(_exists_message(self.path)) from error
            raise LewmError(f"{self.path}: cannot create file ({error})") from error

    def _open_append(self) -> None:
        """Open an existing valid file in place, its schema taken from its columns."""
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
            self._kept_rows = existing.num_rows
            self._kept_episodes = existing.num_episodes
        self._schema = schema
        try:
            self._file = _open_for_writing(self.path, "a")
        except OSError as error:
            raise LewmError(f"{self.path}: cannot open for appending ({error})") from error
        self._check_growable()
        self._truncate()

    def _check_growable(self) -> None:
        """Appending resizes columns along rows, which HDF5 allows only for chunked, unlimited datasets."""
        assert self._file is not None
        for name in self._growing_columns():
            if self._file[name].maxshape[0] is not None:
                self._file.close()
                self._file = None
                raise LewmError(
                    f"{self.path}: column '{name}' cannot grow (it needs chunked storage with an unlimited "
                    "first dimension); write a new file instead"
                )

    def _growing_columns(self) -> list[str]:
        """Every dataset that gets longer as episodes are added (none before a new file's first episode)."""
        if self._schema is None:
            return []
        names = list(self._schema) + list(INDEX_KEYS)
        if self._episode_key:
            names.append(self._episode_key)
        if self._has_step:
            names.append(STEP_KEY)
        return names

    def _truncate(self) -> None:
        """Cut every growing column back to the kept rows and episodes and set `COMPLETE_KEY` to match: drops the
        episodes added since (abort) or the leftovers of an interrupted write (opening to append)."""
        file = self._open()
        for name in self._growing_columns():
            size = self._kept_episodes if name in INDEX_KEYS else self._kept_rows
            if file[name].shape[0] > size:
                file[name].resize(size, axis=0)
        file.attrs.modify(COMPLETE_KEY, np.int64(self._kept_episodes))
        self.num_rows, self.num_episodes = self._kept_rows, self._kept_episodes

    def _open(self) -> h5py.File:
        """The open h5py handle (raises once the writer is closed)."""
        if self._file is None:
            raise LewmError(f"{self.path}: writer is closed")
        return self._file

    @property
    def attrs(self) -> h5py.AttributeManager:
        """The file's root attributes (e.g. the settings that produced it); on disk from the next commit or close."""
        return self._open().attrs

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
                # float32, except a float64 state column (MuJoCo's qpos/qvel): rounding it to float32 would keep a
                # replay of the stored actions from reproducing the stored next states
                dtype = np.float64 if name == "state" and array.dtype == np.float64 else np.float32
                file.create_dataset(
                    name, shape=(0, *row_shape), maxshape=(None, *row_shape), dtype=dtype, chunks=True
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
        file = self._open()
        arrays = self._check_episode(columns)
        if self._schema is None:
            self._create_columns(arrays)
        else:
            self._check_schema(arrays)
        length = int(arrays["pixels"].shape[0])
        start, stop = self.num_rows, self.num_rows + length
        # Rows first, then the index entries; readers count neither until a commit raises COMPLETE_KEY.
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

    def commit(self) -> None:
        """Make the episodes added so far part of the file for good (atomic=False only): a process killed
        afterwards, at any moment, leaves them readable, and an exception no longer drops them."""
        if self.atomic:
            raise LewmError(f"{self.path}: commit() needs a writer opened with atomic=False")
        self._commit()
        self._kept_rows, self._kept_episodes = self.num_rows, self.num_episodes

    def _commit(self) -> None:
        """Flush the rows and index entries, then raise `COMPLETE_KEY` over them and flush again. The second flush
        writes that one attribute in place, so a process killed at any point leaves the old count or the new
        one, each describing episodes whose rows are on disk."""
        file = self._open()
        file.flush()
        file.attrs.modify(COMPLETE_KEY, np.int64(self.num_episodes))
        file.flush()

    def close(self) -> None:
        """Finish the file: commit, and for an atomic new file move it into place. Idempotent."""
        if self._file is None:
            return
        if self.num_episodes == 0 and self.mode != "a":
            self.abort()
            raise LewmError(f"{self.path}: no episodes were written; not creating an empty file")
        self._commit()
        self._file.close()
        self._file = None
        if self._temp is None:  # written in place
            _fsync(self.path)
            return
        temp, self._temp = self._temp, None
        try:
            _fsync(temp)
            if self.mode == "x" and self.path.exists():
                raise LewmError(_exists_message(self.path))
            os.replace(temp, self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        """Drop the episodes added since the file was opened (atomic) or last committed (atomic=False): delete an
        atomic new file's temp file, remove a file this writer created and committed nothing to, else truncate
        `path` back."""
        if self._file is None:
            return
        discard = self._temp or (self.path if self._created and self._kept_episodes == 0 else None)
        try:
            if discard is None:
                self._truncate()
        finally:
            self._file.close()
            self._file = None
            self._temp = None
            self.num_rows, self.num_episodes = self._kept_rows, self._kept_episodes
        if discard is not None:
            discard.unlink(missing_ok=True)

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _open_for_writing(path: Path, mode: str) -> h5py.File:
    """An h5py handle that keeps changed metadata in memory until the next flush.

    By default HDF5 writes metadata (chunk index nodes, dataset shapes) whenever its cache fills, so a process
    killed between two flushes could leave an index half updated. With evictions off, the file on disk changes
    between flushes only by raw chunks: new ones in space no flushed metadata points to, and rewrites of partly
    filled chunks whose committed bytes stay as they were. The cost is memory: the cache grows with the index.
    """
    file = h5py.File(path, mode)
    config = file.id.get_mdc_config()
    config.evictions_enabled = False
    # HDF5 accepts disabled evictions only with automatic cache resizing off (H5C_incr__off, H5C_decr__off).
    config.incr_mode = config.flash_incr_mode = config.decr_mode = 0
    file.id.set_mdc_config(config)
    return file


def _create_in_place(path: Path, attrs: Mapping[str, Any], replace: bool) -> None:
    """Create `path` as an HDF5 file holding only `attrs`, in one write of a file image built in memory.

    An HDF5 create writes a 96-byte header at once and the rest at its first flush, so a process killed in
    between would leave a file that nothing opens; this way `path` is empty or whole (a kill inside the one
    write call, a few microseconds, is the exception). `replace` unlinks an existing file first; without it an
    existing `path` raises FileExistsError.
    """
    # HDF5 tells in-memory files apart by name: a unique one, so that no two ever meet.
    with h5py.File(f"{path.name}.{secrets.token_hex(8)}", "w", driver="core", backing_store=False) as memory:
        memory.attrs.update(attrs)
        memory.flush()
        image = memoryview(memory.id.get_file_image())
    if replace:
        path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        while image:
            image = image[os.write(descriptor, image):]
    finally:
        os.close(descriptor)


def _fsync(path: Path) -> None:
    """Ask the OS to put `path` on disk, so that a finished file also survives a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
