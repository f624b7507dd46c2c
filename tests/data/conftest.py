"""Hand-made community-layout files whose values encode their own row, so tests can check exact slices.

Files are written with raw h5py (not `EpisodeWriter`) so that reader tests do not depend on the writer.
Row r of a file holds: pixels[r, :, :, 0] = r % 256, pixels[r, :, :, 1] = r // 256, pixels[r, :, :, 2] = 7;
action[r, d] = 10 * r + d; proprio[r, p] = 100 * r + p.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest

LENGTHS = (23, 7, 31)
"""Episode lengths of the standard hand-made file (one too short for most clips)."""


def encoded_pixels(rows: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (n, H, W, 3) frames whose channels encode the row number."""
    frames = np.empty((len(rows), height, width, 3), dtype=np.uint8)
    frames[..., 0] = (rows % 256)[:, None, None]
    frames[..., 1] = (rows // 256)[:, None, None]
    frames[..., 2] = 7
    return frames


def encoded_actions(rows: np.ndarray, action_dim: int) -> np.ndarray:
    """float32 (n, A) with action[r, d] = 10 r + d."""
    return (10.0 * rows[:, None] + np.arange(action_dim)[None, :]).astype(np.float32)


def encoded_proprio(rows: np.ndarray, dim: int) -> np.ndarray:
    """float32 (n, P) with proprio[r, p] = 100 r + p."""
    return (100.0 * rows[:, None] + np.arange(dim)[None, :]).astype(np.float32)


def layout(
    lengths: Sequence[int] = LENGTHS,
    image: tuple[int, int] = (6, 5),
    action_dim: int = 2,
    proprio_dim: int = 3,
    episode_key: str = "episode_idx",
    nan_last_action: bool = False,
) -> dict[str, np.ndarray]:
    """The columns of a valid community-layout file as numpy arrays (mutate them to make bad files)."""
    lengths_array = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths_array)[:-1]]).astype(np.int64)
    rows = np.arange(int(lengths_array.sum()))
    action = encoded_actions(rows, action_dim)
    if nan_last_action:
        action[offsets + lengths_array - 1] = np.nan
    return {
        "pixels": encoded_pixels(rows, *image),
        "action": action,
        "proprio": encoded_proprio(rows, proprio_dim),
        episode_key: np.repeat(np.arange(len(lengths_array)), lengths_array),
        "step_idx": np.concatenate([np.arange(n) for n in lengths_array]),
        "ep_len": lengths_array,
        "ep_offset": offsets,
    }


def write_raw(
    path: Path, columns: dict[str, np.ndarray], compression: str | None = None, growable: bool = False
) -> Path:
    """Write columns as top-level datasets; pixels chunked per frame like the community files.

    With `growable`, every dataset gets an unlimited first dimension so `EpisodeWriter` can append to it.
    """
    with h5py.File(path, "w") as file:
        for name, values in columns.items():
            maxshape = (None, *values.shape[1:]) if growable and values.ndim >= 1 else None
            if name == "pixels" and values.ndim == 4 and values.shape[0] > 0:
                file.create_dataset(
                    name,
                    data=values,
                    chunks=(1, *values.shape[1:]),
                    compression=compression,
                    maxshape=maxshape,
                )
            else:
                file.create_dataset(name, data=values, maxshape=maxshape)
    return path


class Files:
    """Helpers handed to tests through the `files` fixture (conftest modules should not be imported)."""

    lengths = LENGTHS
    layout = staticmethod(layout)
    pixels = staticmethod(encoded_pixels)
    actions = staticmethod(encoded_actions)
    proprio = staticmethod(encoded_proprio)

    def __init__(self, directory: Path):
        self.directory = directory

    def write(
        self,
        name: str,
        columns: dict[str, np.ndarray],
        compression: str | None = None,
        growable: bool = False,
    ) -> Path:
        """Write raw columns to directory/name."""
        return write_raw(self.directory / name, columns, compression=compression, growable=growable)

    def make(
        self, name: str = "episodes.h5", compression: str | None = None, growable: bool = False, **kwargs
    ) -> Path:
        """A valid file built by `layout(**kwargs)`."""
        return self.write(name, layout(**kwargs), compression=compression, growable=growable)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    """Helpers that write hand-made files under this test's tmp_path."""
    return Files(tmp_path)


@pytest.fixture
def hand_file(files: Files) -> Path:
    """The standard file: 3 episodes of lengths 23, 7, 31, images 6x5, A = 2, proprio P = 3."""
    return files.make()
