"""A train that fails on its data raises one line naming the problem and leaves no run directory behind, and
never removes a directory it did not create."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm.data.synthetic import write_moving_dot_file
from lewm.errors import LewmError
from lewm.runs import load_checkpoint
from lewm.training import train


def _copy_columns(source: Path, path: Path, change: Callable[[str, np.ndarray], np.ndarray | None]) -> Path:
    """A copy of `source` with each column replaced by change(name, values) (None drops the column)."""
    with h5py.File(source, "r") as original, h5py.File(path, "w") as copy:
        for name, dataset in original.items():
            values = change(name, dataset[()])
            if values is not None:
                copy.create_dataset(name, data=values)
    return path


def _unreadable_pixels(source: Path, path: Path) -> Path:
    """A copy whose gzip-compressed pixel chunks are garbage: the file opens and passes every check (pixels are
    never read up front), and fails only when the first batch is read, after the run directory is written."""
    with h5py.File(source, "r") as original, h5py.File(path, "w") as copy:
        for name, dataset in original.items():
            chunks = (1, *dataset.shape[1:]) if name == "pixels" else None
            copy.create_dataset(name, data=dataset[()], chunks=chunks, compression="gzip" if chunks else None)
    with h5py.File(path, "r") as file:
        pixels = file["pixels"].id
        spans = [(info.byte_offset, info.size) for info in map(pixels.get_chunk_info, range(pixels.get_num_chunks()))]
    with path.open("r+b") as stream:
        for offset, size in spans:
            stream.seek(offset)
            stream.write(b"\xab" * size)
    return path


def _bad_file(case: str, dots: Path, folder: Path) -> Path:
    """The episode file of each bad-data case, made from the shared dots file (which stays untouched)."""
    path = folder / f"{case}.h5"
    if case == "missing":
        return path
    if case == "not_hdf5":
        path.write_bytes(b"not an HDF5 file at all\n" * 100)
    elif case == "truncated":
        path.write_bytes(dots.read_bytes()[: dots.stat().st_size // 2])
    elif case == "unreadable_pixels":
        _unreadable_pixels(dots, path)
    elif case == "too_few_episodes":  # one training episode of 30 steps: 11 clips for a batch of 16
        write_moving_dot_file(path, num_episodes=2, episode_length=30)
    elif case == "episodes_too_short":  # a clip spans 4 frames x frameskip 5 = 20 rows
        write_moving_dot_file(path, num_episodes=24, episode_length=12)
    elif case == "action_rows":
        _copy_columns(dots, path, lambda name, values: values[:-1] if name == "action" else values)
    elif case == "no_action":
        _copy_columns(dots, path, lambda name, values: None if name == "action" else values)
    elif case == "action_dim":  # the file is fine; the config asks for 3-D actions
        return dots
    return path


BAD_DATA = {
    "missing": r"missing\.h5: file does not exist",
    "not_hdf5": r"not_hdf5\.h5: not an HDF5 file",
    "truncated": r"truncated\.h5: cannot open HDF5 file .*truncated file",
    "unreadable_pixels": r"unreadable_pixels\.h5: cannot read clips \(.*filter returned failure",
    "too_few_episodes": r"only 11 training clips, fewer than optim\.batch_size = 16",
    "episodes_too_short": r"no episode is long enough for a clip of 20 rows",
    "action_rows": r"column 'action' has 959 rows but 'pixels' has 960",
    "no_action": r"missing column 'action'",
    "action_dim": r"'action' has 2 dimensions but model\.action_dim = 3",
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_bad_data_raises_one_line_and_leaves_no_run_directory(case: str, tiny_config, dots_file: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "runs" / "run"  # two missing levels: neither may be left behind
    config = tiny_config(_bad_file(case, dots_file, tmp_path), out, steps=3)
    if case == "action_dim":
        config.model.action_dim = 3
    with pytest.raises(LewmError, match=BAD_DATA[case]) as caught:
        train(config)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "runs").exists()


def test_existing_out_directory_is_kept_when_the_data_fails_late(tiny_config, dots_file: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(LewmError, match="cannot read clips"):
        train(tiny_config(_bad_file("unreadable_pixels", dots_file, tmp_path), out, steps=3))
    assert (out / "notes.txt").read_text() == "mine"


def test_resumed_run_is_kept_when_the_data_fails(tiny_config, dots_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(dots_file, run, steps=3))
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(LewmError, match="cannot read clips"):
        train(tiny_config(_bad_file("unreadable_pixels", dots_file, tmp_path), run, steps=6, resume=True))
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3
    assert (run / "metrics.jsonl").is_file() and (run / "plots" / "loss.png").is_file()
