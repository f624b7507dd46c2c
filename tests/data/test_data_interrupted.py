"""Interrupted writes: `EpisodeFile` reads the complete episodes a `COMPLETE_KEY` attribute counts, and the
resumable writer (atomic=False) commits in place, keeps committed episodes and drops the rest."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm.data import ClipDataset, EpisodeFile, EpisodeWriter
from lewm.data.hdf5 import COMPLETE_KEY, file_attributes
from lewm.errors import LewmError


def matches(path: Path, text: str) -> str:
    """A regex requiring the file name and then `text` (both literal) in a LewmError message."""
    return re.escape(path.name) + ".*" + re.escape(text)


def episode(length: int, first_row: int = 0) -> dict[str, np.ndarray]:
    """An episode whose values encode `first_row + step` (pixels 6x5, action 2, proprio 3)."""
    rows = np.arange(first_row, first_row + length)
    return {
        "pixels": (rows[:, None, None, None] % 256 * np.ones((1, 6, 5, 3))).astype(np.uint8),
        "action": (10.0 * rows[:, None] + np.arange(2)).astype(np.float32),
        "proprio": (100.0 * rows[:, None] + np.arange(3)).astype(np.float32),
    }


def interrupted(files, name: str = "cut.h5", complete: int = 2, extra_rows: dict | None = None) -> Path:
    """The standard hand-made file (lengths 23, 7, 31) as a killed writer leaves it: `COMPLETE_KEY` counts
    `complete` episodes and some columns carry rows past them (the third episode's, partly written)."""
    columns = files.layout()
    committed = int(sum(files.lengths[:complete]))
    for column, rows in (extra_rows or {"pixels": 31, "action": 12, "proprio": 0}).items():
        columns[column] = columns[column][: committed + rows]
    path = files.write(name, columns, growable=True)
    with h5py.File(path, "a") as file:
        file.attrs[COMPLETE_KEY] = np.int64(complete)
    return path


# -- reading ------------------------------------------------------------------------------------------------


def test_only_the_complete_episodes_count(files) -> None:
    path = interrupted(files)
    with EpisodeFile(path) as file:
        assert file.num_episodes == 2 and file.num_rows == 30
        assert file.ep_len.tolist() == [23, 7] and file.ep_offset.tolist() == [0, 23]
        assert file.episode_rows().tolist() == list(range(30))
    clips = ClipDataset(path, history=1, num_preds=1, frameskip=1)
    assert len(clips) == 22 + 6  # clips of 2 frames in episodes of 23 and 7 rows, none in the cut third one


def test_a_marker_counting_everything_reads_like_a_plain_file(files) -> None:
    path = interrupted(files, complete=3, extra_rows={})
    with EpisodeFile(path) as file:
        assert file.num_episodes == 3 and file.num_rows == 61


@pytest.mark.parametrize(
    ("complete", "extra_rows", "message"),
    [
        (0, {}, "empty file: no complete episode ('complete_episodes' is 0: an interrupted write)"),
        (4, {}, "'complete_episodes' is 4 but 'ep_len' has 3 entries"),
        (2, {"action": -1}, "column 'action' has 29 rows but the complete episodes need 30"),
    ],
)
def test_bad_markers_and_short_columns_are_refused(files, complete: int, extra_rows: dict, message: str) -> None:
    path = interrupted(files, complete=complete, extra_rows=extra_rows)
    with pytest.raises(LewmError, match=matches(path, message)):
        EpisodeFile(path)


def test_a_marker_that_is_no_count_is_refused(files) -> None:
    path = files.make("odd.h5")
    with h5py.File(path, "a") as file:
        file.attrs[COMPLETE_KEY] = "many"
    with pytest.raises(LewmError, match=matches(path, "attribute 'complete_episodes' = 'many' is invalid")):
        EpisodeFile(path)


def test_file_attributes_reads_plain_values(files, tmp_path: Path) -> None:
    path = interrupted(files)
    assert file_attributes(path) == {COMPLETE_KEY: 2}
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(LewmError, match=matches(text, "cannot open HDF5 file")):
        file_attributes(text)


# -- writing in place -----------------------------------------------------------------------------------------


def test_commit_makes_episodes_visible_and_keeps_them_after_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "inplace.h5"
    with pytest.raises(RuntimeError, match="boom"), EpisodeWriter(path, atomic=False) as writer:
        writer.add_episode(**episode(4))
        writer.add_episode(**episode(5, 4))
        writer.commit()
        with EpisodeFile(path) as file:  # a reader sees the committed episodes while the writer goes on
            assert file.ep_len.tolist() == [4, 5]
        writer.add_episode(**episode(6, 9))
        raise RuntimeError("boom")
    with EpisodeFile(path) as file:
        assert file.ep_len.tolist() == [4, 5] and file.num_rows == 9
        assert all(len(file.dataset(name)) == 9 for name in ("pixels", "action", "step_idx", "episode_idx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inplace.h5"]  # no temporary file, ever


def test_nothing_committed_removes_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "gone.h5"
    with pytest.raises(RuntimeError, match="boom"), EpisodeWriter(path, atomic=False) as writer:
        writer.add_episode(**episode(4))
        assert path.exists()  # written in place from the start
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_mode_w_in_place_replaces_at_once(tmp_path: Path) -> None:
    path = tmp_path / "replaced.h5"
    with EpisodeWriter(path) as writer:
        writer.add_episode(**episode(8))
    with EpisodeWriter(path, mode="w", atomic=False, attrs={"made_by": "test"}) as writer:
        assert file_attributes(path) == {"made_by": "test", COMPLETE_KEY: 0}  # created whole, attributes included
        writer.add_episode(**episode(3))
    with EpisodeFile(path) as file:
        assert file.ep_len.tolist() == [3]
    assert file_attributes(path) == {"made_by": "test", COMPLETE_KEY: 1}
    with pytest.raises(LewmError, match=matches(path, "file exists")):
        EpisodeWriter(path, atomic=False)


def test_append_drops_an_interrupted_write_and_continues(files) -> None:
    path = interrupted(files)
    rows = np.arange(30, 61)
    with EpisodeWriter(path, mode="a", atomic=False) as writer:
        assert writer.num_episodes == 2 and writer.num_rows == 30
        writer.add_episode(files.pixels(rows, 6, 5), files.actions(rows, 2), proprio=files.proprio(rows, 3))
    expected = files.layout()
    with h5py.File(path, "r") as raw:
        for name, values in expected.items():
            assert np.array_equal(raw[name][()], values), name  # as if the third episode had never been cut
        assert raw.attrs[COMPLETE_KEY] == 3


def test_atomic_append_rolls_back_to_the_file_as_opened(files) -> None:
    path = interrupted(files)
    with pytest.raises(RuntimeError, match="boom"), EpisodeWriter(path, mode="a") as writer:
        writer.add_episode(**episode(31, 30))
        raise RuntimeError("boom")
    with EpisodeFile(path) as file:
        assert file.num_episodes == 2
    with h5py.File(path, "r") as raw:
        assert len(raw["pixels"]) == 30  # the leftovers went when the writer opened the file


def test_commit_needs_atomic_false(tmp_path: Path) -> None:
    path = tmp_path / "atomic.h5"
    with pytest.raises(LewmError, match=matches(path, "commit() needs a writer opened with atomic=False")):
        with EpisodeWriter(path) as writer:
            writer.add_episode(**episode(3))
            writer.commit()
    assert list(tmp_path.iterdir()) == []


def test_closed_files_record_their_episode_count(tmp_path: Path) -> None:
    path = tmp_path / "count.h5"
    with EpisodeWriter(path) as writer:
        writer.add_episode(**episode(3))
        writer.add_episode(**episode(4, 3))
        writer.attrs["made_by"] = "test"
    assert file_attributes(path) == {COMPLETE_KEY: 2, "made_by": "test"}
