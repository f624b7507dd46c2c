"""Clip sampling (exact frames and action blocks), episode split, and multi-process loading."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lewm.data import ClipDataset, EpisodeFile, NormStats, compute_stats, split_episodes
from lewm.errors import LewmError

OFFSETS = (0, 23, 30)  # episode starts of the hand-made file (lengths 23, 7, 31)


def expected_starts(lengths, offsets, span: int) -> list[int]:
    """Every start row whose span of raw rows fits in its episode, computed independently of the code."""
    starts = []
    for length, offset in zip(lengths, offsets, strict=True):
        for r in range(offset, offset + length):
            if r + span <= offset + length:
                starts.append(r)
    return starts


def episode_of(row: int, lengths, offsets) -> int:
    for e, (length, offset) in enumerate(zip(lengths, offsets, strict=True)):
        if offset <= row < offset + length:
            return e
    raise AssertionError(row)


@pytest.mark.parametrize(("history", "num_preds", "frameskip"), [(3, 1, 2), (1, 1, 1), (3, 1, 5), (2, 0, 3)])
def test_clips_have_exact_frames_and_action_blocks(
    files, hand_file: Path, history, num_preds, frameskip
) -> None:
    lengths = files.lengths
    dataset = ClipDataset(hand_file, history, num_preds, frameskip, extra_columns=["proprio"])
    T = history + num_preds
    span = T * frameskip
    assert dataset.num_frames == T
    assert dataset.action_block_dim == frameskip * 2
    assert dataset.image_shape == (6, 5, 3)

    starts = expected_starts(lengths, OFFSETS, span)
    assert dataset.clip_starts.dtype == np.int64
    assert dataset.clip_starts.tolist() == starts
    assert len(dataset) == len(starts)
    for length, offset in zip(lengths, OFFSETS, strict=True):
        clips_here = sum(offset <= s < offset + length for s in dataset.clip_starts)
        assert clips_here == max(length - span + 1, 0)
        if length >= span:  # the last valid start is included, the one after it is not
            assert offset + length - span in dataset.clip_starts
            assert offset + length - span + 1 not in dataset.clip_starts

    for i, start in enumerate(starts):
        item = dataset[i]
        assert set(item) == {"pixels", "action", "proprio"}
        # No clip crosses an episode boundary.
        assert episode_of(start, lengths, OFFSETS) == episode_of(start + span - 1, lengths, OFFSETS)
        frame_rows = start + frameskip * np.arange(T)
        pixels = item["pixels"]
        assert pixels.dtype == torch.uint8 and pixels.shape == (T, 3, 6, 5)
        np.testing.assert_array_equal(
            pixels[:, 0].numpy(), np.broadcast_to((frame_rows % 256)[:, None, None], (T, 6, 5))
        )
        np.testing.assert_array_equal(
            pixels[:, 1].numpy(), np.broadcast_to((frame_rows // 256)[:, None, None], (T, 6, 5))
        )
        assert (pixels[:, 2] == 7).all()
        # Block t = [a_{r+t*fs, 0}, a_{r+t*fs, 1}, a_{r+t*fs+1, 0}, ...]: raw actions between frames.
        action = item["action"]
        assert action.dtype == torch.float32 and action.shape == (T, frameskip * 2)
        expected = np.array(
            [
                [10.0 * (start + t * frameskip + k) + d for k in range(frameskip) for d in range(2)]
                for t in range(T)
            ]
        )
        np.testing.assert_array_equal(action.numpy(), expected)
        proprio = item["proprio"]
        assert proprio.dtype == torch.float32 and proprio.shape == (T, 3)
        np.testing.assert_array_equal(proprio.numpy(), 100.0 * frame_rows[:, None] + np.arange(3))


def test_negative_index_and_out_of_range(hand_file: Path) -> None:
    dataset = ClipDataset(hand_file, 3, 1, 2)
    assert torch.equal(dataset[-1]["action"], dataset[len(dataset) - 1]["action"])
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_episode_subset(hand_file: Path) -> None:
    dataset = ClipDataset(hand_file, 3, 1, 2, episodes=np.array([2]))
    assert dataset.clip_starts.tolist() == list(range(30, 30 + 31 - 8 + 1))
    assert set(dataset.clip_episodes.tolist()) == {2}
    only_short = ClipDataset(hand_file, 1, 1, 3, episodes=[1, 0])
    assert only_short.clip_starts.tolist() == list(range(23, 23 + 7 - 6 + 1)) + list(range(0, 23 - 6 + 1))


def test_no_episode_long_enough(hand_file: Path) -> None:
    with pytest.raises(
        LewmError, match=re.escape(hand_file.name) + r".*40 rows.*longest episode has 31 rows"
    ):
        ClipDataset(hand_file, 3, 1, 10)
    with pytest.raises(LewmError, match=re.escape(hand_file.name) + r".*8 rows.*longest episode has 7 rows"):
        ClipDataset(hand_file, 3, 1, 2, episodes=[1])
    empty = ClipDataset(hand_file, 3, 1, 2, episodes=[1], allow_empty=True)  # e.g. a short validation split
    assert len(empty) == 0 and empty.clip_starts.dtype == np.int64


def test_bad_arguments_name_file_and_value(hand_file: Path) -> None:
    name = re.escape(hand_file.name)
    with pytest.raises(LewmError, match=name + r".*history = 0"):
        ClipDataset(hand_file, 0, 1, 1)
    with pytest.raises(LewmError, match=name + r".*frameskip = 0"):
        ClipDataset(hand_file, 1, 1, 0)
    with pytest.raises(LewmError, match=name + r".*missing column 'state'"):
        ClipDataset(hand_file, 1, 1, 1, extra_columns=["state"])
    with pytest.raises(LewmError, match=name + r".*episode 3 does not exist"):
        ClipDataset(hand_file, 1, 1, 1, episodes=[0, 3])
    with pytest.raises(LewmError, match=name + r".*no episodes selected"):
        ClipDataset(hand_file, 1, 1, 1, episodes=[])
    with EpisodeFile(hand_file) as file:
        action_only = compute_stats(file, ["action"])
    with pytest.raises(LewmError, match=name + r".*stats lack column 'proprio'"):
        ClipDataset(hand_file, 1, 1, 1, stats=action_only, extra_columns=["proprio"])
    wrong = NormStats(mean={"action": np.zeros(3)}, std={"action": np.ones(3)})
    with pytest.raises(LewmError, match=name + r".*column 'action' have 3 dims, the file has 2"):
        ClipDataset(hand_file, 1, 1, 1, stats=wrong)


def test_nan_last_action_becomes_zero_after_normalisation(files) -> None:
    path = files.make("nan.h5", nan_last_action=True, episode_key="ep_idx")
    with EpisodeFile(path) as file:
        assert file.episode_key == "ep_idx"
        stats = compute_stats(file, ["action", "proprio"])
    raw = files.actions(np.arange(61), 2).astype(np.float64)
    last_rows = {22, 29, 60}
    mask = np.array([r not in last_rows for r in range(61)])
    np.testing.assert_allclose(stats.mean["action"], raw[mask].mean(axis=0))
    assert stats.mean["action"][0] != 0  # so replacing NaN before normalising would not give 0

    frameskip = 2
    dataset = ClipDataset(path, 3, 1, frameskip, stats=stats, extra_columns=["proprio"])
    last_clip = dataset.clip_starts.tolist().index(60 - 8 + 1)  # the clip ending on episode 2's last row
    action = dataset[last_clip]["action"].numpy().reshape(8, 2)  # (T * frameskip, A)
    assert not np.isnan(action).any()
    np.testing.assert_array_equal(action[-1], [0.0, 0.0])
    rows = np.arange(53, 60)
    expected = (raw[rows] - stats.mean["action"]) / stats.std["action"]
    np.testing.assert_allclose(action[:-1], expected, rtol=1e-5, atol=1e-5)
    proprio = dataset[last_clip]["proprio"].numpy()
    frame_rows = 53 + frameskip * np.arange(4)
    np.testing.assert_allclose(
        proprio,
        (100.0 * frame_rows[:, None] + np.arange(3) - stats.mean["proprio"]) / stats.std["proprio"],
        rtol=1e-5,
        atol=1e-5,
    )


def test_gzip_pixels_and_odd_image_size(files) -> None:
    path = files.make("gz.h5", compression="gzip", image=(48, 40))
    dataset = ClipDataset(path, 2, 1, 3)
    assert dataset.image_shape == (48, 40, 3)
    item = dataset[5]
    assert item["pixels"].shape == (3, 3, 48, 40)
    start = int(dataset.clip_starts[5])
    expected = start + 3 * np.arange(3)
    assert (item["pixels"][:, 0] == torch.from_numpy(expected).to(torch.uint8)[:, None, None]).all()


def test_one_dimensional_extra_column(files) -> None:
    columns = files.layout()
    columns["reward"] = np.arange(61, dtype=np.float64) * 0.5
    path = files.write("reward.h5", columns)
    item = ClipDataset(path, 2, 1, 2, extra_columns=["reward"])[0]
    assert item["reward"].shape == (3, 1) and item["reward"].dtype == torch.float32
    np.testing.assert_array_equal(item["reward"][:, 0].numpy(), [0.0, 1.0, 2.0])


def test_dataset_pickles_after_use(hand_file: Path) -> None:
    dataset = ClipDataset(hand_file, 3, 1, 2)
    first = dataset[7]
    clone = pickle.loads(pickle.dumps(dataset))  # an open h5py handle would not pickle
    assert torch.equal(clone[7]["pixels"], first["pixels"]) and torch.equal(
        clone[7]["action"], first["action"]
    )


def _batches(dataset: ClipDataset, **kwargs) -> list[dict[str, torch.Tensor]]:
    return list(DataLoader(dataset, batch_size=5, shuffle=False, **kwargs))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_dataloader_workers_match_single_process(files, context: str) -> None:
    path = files.make("workers.h5", compression="gzip")
    with EpisodeFile(path) as file:
        stats = compute_stats(file, ["action", "proprio"])
    dataset = ClipDataset(path, 3, 1, 2, stats=stats, extra_columns=["proprio"])
    dataset[0]  # the parent holds an open handle before the workers start
    reference = _batches(dataset, num_workers=0)
    parallel = _batches(dataset, num_workers=2, multiprocessing_context=context)
    assert len(reference) == len(parallel) == 8  # 40 clips
    for one, many in zip(reference, parallel, strict=True):
        assert one.keys() == many.keys()
        for key in one:
            assert torch.equal(one[key], many[key]), key
    assert reference[0]["pixels"].shape == (5, 4, 3, 6, 5)  # (B, T, 3, H, W)
    assert reference[0]["action"].shape == (5, 4, 4)  # (B, T, frameskip * A)


# ---------------------------------------------------------------------------------------------------------
# split_episodes
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("num_episodes", "fraction"), [(100, 0.1), (7, 0.3), (2, 0.01), (10, 0.0), (1, 0.5)])
def test_split_is_disjoint_covering_and_seeded(num_episodes: int, fraction: float) -> None:
    train, val = split_episodes(num_episodes, fraction, seed=3)
    assert train.dtype == np.int64 and val.dtype == np.int64
    assert len(train) >= 1
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(num_episodes))
    again_train, again_val = split_episodes(num_episodes, fraction, seed=3)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    if fraction == 0.0 or num_episodes == 1:
        assert len(val) == 0
    else:
        assert len(val) >= 1


def test_split_sizes_and_seed_dependence() -> None:
    train, val = split_episodes(100, 0.1, seed=0)
    assert len(val) == 10 and len(train) == 90
    other_train, other_val = split_episodes(100, 0.1, seed=1)
    assert not np.array_equal(val, other_val)
    assert len(split_episodes(3, 0.9, seed=0)[0]) == 1  # never leaves training empty
    with pytest.raises(LewmError, match="val_fraction = 1.0"):
        split_episodes(10, 1.0, seed=0)
    with pytest.raises(LewmError, match="num_episodes = 0"):
        split_episodes(0, 0.1, seed=0)


def test_held_out_episodes_are_the_validation_ones_or_the_training_ones_when_none() -> None:
    from lewm.data import held_out_episodes

    _, val = split_episodes(20, 0.2, seed=3)
    np.testing.assert_array_equal(held_out_episodes(20, 0.2, seed=3), val)
    assert len(val) == 4
    np.testing.assert_array_equal(held_out_episodes(5, 0.0, seed=3), np.arange(5))  # no validation split
    np.testing.assert_array_equal(held_out_episodes(1, 0.5, seed=3), np.arange(1))  # one episode: train only
