"""EpisodeFile validation and EpisodeWriter behaviour (modes, atomicity, append, episode checks)."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from lewm.data import ClipDataset, EpisodeFile, EpisodeWriter, write_episodes
from lewm.errors import LewmError


def matches(path: Path, text: str) -> str:
    """A regex requiring the file name and then `text` (both literal) in a LewmError message."""
    return re.escape(path.name) + ".*" + re.escape(text)


# ---------------------------------------------------------------------------------------------------------
# EpisodeFile: reading a good file
# ---------------------------------------------------------------------------------------------------------


def test_episode_file_reports_layout(hand_file: Path) -> None:
    with EpisodeFile(hand_file) as file:
        assert file.path == hand_file
        assert file.num_rows == 61
        assert file.num_episodes == 3
        assert file.ep_len.dtype == np.int64 and file.ep_len.tolist() == [23, 7, 31]
        assert file.ep_offset.dtype == np.int64 and file.ep_offset.tolist() == [0, 23, 30]
        assert set(file.columns) == {
            "pixels",
            "action",
            "proprio",
            "episode_idx",
            "step_idx",
            "ep_len",
            "ep_offset",
        }
        assert file.image_shape == (6, 5, 3)
        assert file.action_dim == 2
        assert file.column_dim("proprio") == 3
        assert file.column_dim("pixels") == 6 * 5 * 3
        assert file.episode_key == "episode_idx"
        assert file.episode_rows([2, 0]).tolist() == list(range(0, 23)) + list(range(30, 61))
        with pytest.raises(LewmError, match=matches(hand_file, "missing column 'nope'")):
            file.column_dim("nope")
    with pytest.raises(LewmError, match="closed"):
        _ = file.file


def test_episode_file_accepts_ep_idx_and_custom_keys(files) -> None:
    path = files.make(episode_key="ep_idx")
    with EpisodeFile(path) as file:
        assert file.episode_key == "ep_idx"
    columns = files.layout()
    columns["obs"] = columns.pop("pixels")
    columns["act"] = columns.pop("action")
    renamed = files.write("renamed.h5", columns)
    with pytest.raises(LewmError, match=matches(renamed, "missing column 'pixels'")):
        EpisodeFile(renamed)
    with EpisodeFile(renamed, pixels_key="obs", action_key="act") as file:
        assert file.image_shape == (6, 5, 3) and file.action_dim == 2


def test_episode_file_does_not_need_an_episode_index_column(files) -> None:
    columns = files.layout()
    del columns["episode_idx"], columns["step_idx"]
    with EpisodeFile(files.write("bare.h5", columns)) as file:
        assert file.episode_key is None and file.num_episodes == 3


# ---------------------------------------------------------------------------------------------------------
# EpisodeFile: every bad input names the file and the offending key or value
# ---------------------------------------------------------------------------------------------------------


def _set(name: str, value):
    def mutate(columns: dict[str, np.ndarray]) -> None:
        columns[name] = value(columns) if callable(value) else value

    return mutate


def _drop(name: str):
    def mutate(columns: dict[str, np.ndarray]) -> None:
        del columns[name]

    return mutate


def _empty(columns: dict[str, np.ndarray]) -> None:
    for name in list(columns):
        columns[name] = columns[name][:0]


BAD_FILES = {
    "missing pixels": (_drop("pixels"), "missing column 'pixels'"),
    "missing action": (_drop("action"), "missing column 'action'"),
    "missing ep_len": (_drop("ep_len"), "missing column 'ep_len'"),
    "missing ep_offset": (_drop("ep_offset"), "missing column 'ep_offset'"),
    "no rows": (_empty, "'pixels' has no rows"),
    "no episodes": (
        lambda c: (_set("ep_len", c["ep_len"][:0])(c), _set("ep_offset", c["ep_offset"][:0])(c)),
        "'ep_len' has no episodes",
    ),
    "short action": (
        _set("action", lambda c: c["action"][:-1]),
        "column 'action' has 60 rows but 'pixels' has 61",
    ),
    "short proprio": (_set("proprio", lambda c: c["proprio"][:-2]), "column 'proprio' has 59 rows"),
    "long episode_idx": (
        _set("episode_idx", lambda c: np.concatenate([c["episode_idx"], [2]])),
        "column 'episode_idx' has 62 rows",
    ),
    "sum of ep_len": (
        lambda c: (_set("ep_len", np.array([23, 7, 30]))(c),),
        "sum of 'ep_len' is 60 but 'pixels' has 61 rows",
    ),
    "offset beyond rows": (_set("ep_offset", np.array([0, 23, 31])), "'ep_offset' 31 + 'ep_len' 31 = 62"),
    "zero length": (
        lambda c: (_set("ep_len", np.array([23, 0, 38]))(c), _set("ep_offset", np.array([0, 23, 23]))(c)),
        "'ep_len' of episode 1 is 0",
    ),
    "negative offset": (_set("ep_offset", np.array([-1, 23, 30])), "'ep_offset' of episode 0 is -1"),
    "overlap": (_set("ep_offset", np.array([0, 20, 30])), "'ep_offset' of episode 1 is 20, inside episode 0"),
    "index lengths differ": (
        _set("ep_offset", np.array([0, 23])),
        "'ep_len' has 3 entries but 'ep_offset' has 2",
    ),
    "float ep_len": (_set("ep_len", np.array([23.0, 7.0, 31.0])), "'ep_len' has dtype float64"),
    "2-D ep_offset": (_set("ep_offset", np.array([[0, 23, 30]])), "'ep_offset' has shape (1, 3)"),
    "float pixels": (
        _set("pixels", lambda c: c["pixels"].astype(np.float32)),
        "'pixels' has dtype float32, expected uint8",
    ),
    "gray pixels": (
        _set("pixels", lambda c: c["pixels"][..., 0]),
        "'pixels' has shape (61, 6, 5), expected (N, H, W, 3)",
    ),
    "rgba pixels": (
        _set("pixels", lambda c: np.concatenate([c["pixels"], c["pixels"][..., :1]], axis=-1)),
        "'pixels' has shape (61, 6, 5, 4), expected (N, H, W, 3)",
    ),
    "int action": (_set("action", lambda c: c["action"].astype(np.int64)), "'action' has dtype int64"),
    "1-D action": (_set("action", lambda c: c["action"][:, 0]), "'action' has shape (61,), expected (N, A)"),
    "3-D action": (_set("action", lambda c: c["action"][:, :, None]), "'action' has shape (61, 2, 1)"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_raises_naming_file_and_key(files, case: str) -> None:
    mutate, message = BAD_FILES[case]
    columns = files.layout()
    mutate(columns)
    path = files.write(f"bad_{case.replace(' ', '_')}.h5", columns)
    with pytest.raises(LewmError, match=matches(path, message)):
        EpisodeFile(path)


def test_missing_path_and_non_hdf5_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.h5"
    with pytest.raises(LewmError, match=matches(missing, "does not exist")):
        EpisodeFile(missing)
    text = tmp_path / "notes.h5"
    text.write_text("not an hdf5 file\n" * 100)
    with pytest.raises(LewmError, match=matches(text, "not an HDF5 file")):
        EpisodeFile(text)
    directory = tmp_path / "folder.h5"
    directory.mkdir()
    with pytest.raises(LewmError, match=matches(directory, "not a file")):
        EpisodeFile(directory)


def test_bad_file_also_fails_clip_dataset(files) -> None:
    columns = files.layout()
    del columns["action"]
    path = files.write("no_action.h5", columns)
    with pytest.raises(LewmError, match=matches(path, "missing column 'action'")):
        ClipDataset(path, history=1, num_preds=1, frameskip=1)


# ---------------------------------------------------------------------------------------------------------
# EpisodeWriter
# ---------------------------------------------------------------------------------------------------------


def episode(length: int, first_row: int = 0, image=(6, 5), action_dim: int = 2, **extra_dims: int) -> dict:
    """An episode dict whose values encode `first_row + step`."""
    rows = np.arange(first_row, first_row + length)
    out = {
        "pixels": (rows[:, None, None, None] % 256 * np.ones((1, *image, 3))).astype(np.uint8),
        "action": (10.0 * rows[:, None] + np.arange(action_dim)).astype(np.float64),
    }
    for name, dim in extra_dims.items():
        out[name] = (100.0 * rows[:, None] + np.arange(dim)).astype(np.float32)
    return out


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    """Names in `directory` other than `keep` (temp files a writer should have removed)."""
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_write_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "out" / "written.h5"
    lengths = [5, 9, 4]
    episodes, first = [], 0
    for n in lengths:
        episodes.append(episode(n, first, proprio=3, state=4))
        first += n
    assert write_episodes(path, episodes) == 3
    with EpisodeFile(path) as file:
        assert file.num_rows == 18 and file.num_episodes == 3
        assert file.ep_len.tolist() == lengths and file.ep_offset.tolist() == [0, 5, 14]
        data = file.file
        assert data["pixels"].dtype == np.uint8 and data["pixels"].chunks == (1, 6, 5, 3)
        assert data["pixels"].compression is None
        assert data["action"].dtype == np.float32 and data["proprio"].dtype == np.float32
        for key in ("episode_idx", "step_idx", "ep_len", "ep_offset"):
            assert data[key].dtype == np.int64
        assert data["episode_idx"][:].tolist() == [0] * 5 + [1] * 9 + [2] * 4
        assert data["step_idx"][:].tolist() == list(range(5)) + list(range(9)) + list(range(4))
        np.testing.assert_array_equal(data["pixels"][:, 0, 0, 0], np.arange(18))
        np.testing.assert_array_equal(data["action"][:], 10.0 * np.arange(18)[:, None] + np.arange(2))
        np.testing.assert_array_equal(data["state"][:, 3], 100.0 * np.arange(18) + 3)
    assert leftovers(path.parent, {"written.h5"}) == []


def test_writer_gzip(tmp_path: Path) -> None:
    path = tmp_path / "gz.h5"
    with EpisodeWriter(path, compression="gzip") as writer:
        writer.add_episode(**episode(6))
    with EpisodeFile(path) as file:
        assert file.file["pixels"].compression == "gzip"
        np.testing.assert_array_equal(file.file["pixels"][:, 2, 3, 1], np.arange(6))


def test_mode_x_refuses_existing_file_and_leaves_it_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "existing.h5"
    write_episodes(path, [episode(4)])
    before = path.read_bytes()
    with pytest.raises(LewmError, match=matches(path, "exists; pass overwrite")):
        EpisodeWriter(path)
    with pytest.raises(LewmError, match=matches(path, "exists")):
        write_episodes(path, [episode(3)], mode="x")
    assert path.read_bytes() == before
    assert leftovers(tmp_path, {"existing.h5"}) == []


def test_mode_w_replaces_only_on_success(tmp_path: Path) -> None:
    path = tmp_path / "replace.h5"
    write_episodes(path, [episode(4)])
    before = path.read_bytes()
    with EpisodeWriter(path, mode="w") as writer:
        writer.add_episode(**episode(7))
        assert path.read_bytes() == before  # the old file stays readable until the new one is complete
    with EpisodeFile(path) as file:
        assert file.ep_len.tolist() == [7]
    assert leftovers(tmp_path, {"replace.h5"}) == []


def test_exception_inside_with_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.h5"
    with pytest.raises(RuntimeError, match="boom"), EpisodeWriter(path) as writer:
        writer.add_episode(**episode(5))
        raise RuntimeError("boom")
    assert not path.exists()
    assert leftovers(tmp_path, set()) == []


def test_exception_inside_with_keeps_existing_file_for_mode_w(tmp_path: Path) -> None:
    path = tmp_path / "keep.h5"
    write_episodes(path, [episode(4), episode(3, 4)])
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), EpisodeWriter(path, mode="w") as writer:
        writer.add_episode(**episode(9))
        raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert leftovers(tmp_path, {"keep.h5"}) == []


def test_bad_episode_midway_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "midway.h5"
    bad = episode(4)
    bad["action"] = bad["action"][:3]
    with pytest.raises(LewmError, match=matches(path, "column 'action' has 3 rows but 'pixels' has 4")):
        write_episodes(path, [episode(5), bad])
    assert not path.exists() and leftovers(tmp_path, set()) == []


def test_no_episodes_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    with pytest.raises(LewmError, match=matches(path, "no episodes were written")):
        write_episodes(path, [])
    assert leftovers(tmp_path, set()) == []


def test_append_then_read_back(tmp_path: Path) -> None:
    path = tmp_path / "grow.h5"
    write_episodes(path, [episode(5, 0, proprio=3), episode(6, 5, proprio=3)], compression="gzip")
    with EpisodeWriter(path, mode="a") as writer:
        assert writer.num_episodes == 2 and writer.num_rows == 11
        writer.add_episode(**episode(8, 11, proprio=3))
    with EpisodeFile(path) as file:
        assert file.ep_len.tolist() == [5, 6, 8] and file.ep_offset.tolist() == [0, 5, 11]
        assert file.file["episode_idx"][11:].tolist() == [2] * 8
        assert file.file["step_idx"][11:].tolist() == list(range(8))
        np.testing.assert_array_equal(file.file["pixels"][:, 0, 0, 0], np.arange(19))
        np.testing.assert_array_equal(file.file["proprio"][:, 1], 100.0 * np.arange(19) + 1)
    clips = ClipDataset(path, history=2, num_preds=1, frameskip=2)
    assert len(clips) == 0 + 1 + 3  # 5, 6 and 8 rows with a 6-row clip
    assert clips[3]["pixels"][:, 0, 0, 0].tolist() == [13, 15, 17]


def test_append_to_ep_idx_file_keeps_its_names(files) -> None:
    path = files.make("alias.h5", episode_key="ep_idx", growable=True)
    with EpisodeWriter(path, mode="a") as writer:
        writer.add_episode(**episode(4, 61, proprio=3))
    with EpisodeFile(path) as file:
        assert "episode_idx" not in file.columns
        assert file.file["ep_idx"][-4:].tolist() == [3] * 4
        assert file.ep_len.tolist() == [23, 7, 31, 4]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"state": 2}, "column 'state' is not in the file"),
        ({"proprio": None}, "missing column 'proprio' that the file has"),
        ({"proprio": 4}, "column 'proprio' has per-row shape (4,), but the file has (3,)"),
        ({"action_dim": 3}, "column 'action' has per-row shape (3,), but the file has (2,)"),
        ({"image": (6, 6)}, "column 'pixels' has per-row shape (6, 6, 3), but the file has (6, 5, 3)"),
    ],
)
def test_append_mismatch_names_column_and_rolls_back(tmp_path: Path, changes: dict, message: str) -> None:
    path = tmp_path / "strict.h5"
    write_episodes(path, [episode(5, proprio=3)])
    extra = {k: v for k, v in changes.items() if k not in ("action_dim", "image")}
    kwargs = {k: v for k, v in changes.items() if k in ("action_dim", "image")}
    dims = {"proprio": 3, **{k: v for k, v in extra.items() if v is not None}}
    bad = episode(4, 5, **kwargs, **dims)
    if extra.get("proprio", 0) is None:
        del bad["proprio"]
    with pytest.raises(LewmError, match=matches(path, message)), EpisodeWriter(path, mode="a") as writer:
        writer.add_episode(**episode(3, 5, proprio=3))  # a good episode first: it must be rolled back too
        writer.add_episode(**bad)
    with EpisodeFile(path) as file:
        assert file.num_rows == 5 and file.ep_len.tolist() == [5]
        assert file.file["proprio"].shape == (5, 3)


def test_append_needs_an_existing_valid_file(files, tmp_path: Path) -> None:
    missing = tmp_path / "absent.h5"
    with pytest.raises(LewmError, match=matches(missing, "does not exist; cannot append")):
        EpisodeWriter(missing, mode="a")
    columns = files.layout()
    columns["ep_len"] = np.array([23, 7, 30])
    broken = files.write("broken.h5", columns)
    with pytest.raises(LewmError, match=matches(broken, "sum of 'ep_len'")):
        EpisodeWriter(broken, mode="a")
    fixed = files.make("fixed_size.h5")  # written by h5py without maxshape: cannot grow
    with pytest.raises(LewmError, match=matches(fixed, "cannot grow")):
        EpisodeWriter(fixed, mode="a")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda e: e.update(pixels=e["pixels"].astype(np.float32)),
            "'pixels' has dtype float32, expected uint8",
        ),
        (
            lambda e: e.update(pixels=e["pixels"][..., 0]),
            "'pixels' has shape (4, 6, 5), expected (T, H, W, 3)",
        ),
        (lambda e: e.update(action=e["action"][:, 0]), "'action' has shape (4,), expected (T, A)"),
        (lambda e: e.update(action=e["action"][:2]), "column 'action' has 2 rows but 'pixels' has 4"),
        (lambda e: e.update(proprio=np.zeros((5, 3))), "column 'proprio' has 5 rows but 'pixels' has 4"),
        (lambda e: e.update(note=np.array(["a"] * 4)), "column 'note' has dtype <U1"),
        (lambda e: e.update(step_idx=np.arange(4)), "column 'step_idx' is written by the writer itself"),
        (lambda e: e.pop("action"), "missing column 'action'"),
    ],
)
def test_add_episode_validates_arrays(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "checked.h5"
    bad = episode(4)
    mutate(bad)
    with pytest.raises(LewmError, match=matches(path, f"episode 1: {message}")):
        write_episodes(path, [episode(3), bad])
    assert not path.exists()


def test_later_episodes_must_match_the_first(tmp_path: Path) -> None:
    path = tmp_path / "consistent.h5"
    with pytest.raises(
        LewmError, match=matches(path, "episode 1: column 'pixels' has per-row shape (8, 5, 3)")
    ):
        write_episodes(path, [episode(3), episode(3, image=(8, 5))])
    with pytest.raises(LewmError, match=matches(path, "episode 1: column 'action' has per-row shape (4,)")):
        write_episodes(path, [episode(3), episode(3, action_dim=4)])
    with pytest.raises(LewmError, match=matches(path, "episode 2: column 'state' is not in the file")):
        write_episodes(path, [episode(3), episode(3), episode(3, state=1)])
    assert not path.exists()


def test_writer_rejects_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "args.h5"
    with pytest.raises(LewmError, match=matches(path, "mode = 'r'")):
        EpisodeWriter(path, mode="r")  # type: ignore[arg-type]
    with pytest.raises(LewmError, match=matches(path, "compression = 'zstd'")):
        EpisodeWriter(path, compression="zstd")
    assert not path.exists()


def test_written_file_nan_action_survives(tmp_path: Path) -> None:
    path = tmp_path / "nan.h5"
    ep = episode(4)
    ep["action"][-1] = np.nan
    write_episodes(path, [ep])
    with h5py.File(path) as file:
        assert np.isnan(file["action"][3]).all() and not np.isnan(file["action"][:3]).any()
