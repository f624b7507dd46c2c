"""Normalisation statistics: chunked and row-restricted computation, round trip, normalise/denormalise."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from lewm.data import EpisodeFile, NormStats, compute_stats
from lewm.errors import LewmError


@pytest.fixture
def noisy_file(files):
    """The hand-made layout with random float32 actions (scattered NaN) and a constant proprio dimension."""
    columns = files.layout(action_dim=3)
    rng = np.random.default_rng(0)
    action = (rng.normal(size=(61, 3)) * [1.0, 5.0, 0.01] + [3.0, -2.0, 100.0]).astype(np.float32)
    action[rng.random((61, 3)) < 0.1] = np.nan
    action[[22, 29, 60]] = np.nan  # whole last rows, like files written by other tools
    columns["action"] = action
    columns["proprio"][:, 1] = 4.25
    return files.write("noisy.h5", columns), columns


@pytest.mark.parametrize("chunk_rows", [1, 7, 65536])
def test_stats_equal_numpy_nan_aware(noisy_file, chunk_rows: int) -> None:
    path, columns = noisy_file
    with EpisodeFile(path) as file:
        stats = compute_stats(file, ["action", "proprio"], chunk_rows=chunk_rows)
    action = columns["action"].astype(np.float64)
    np.testing.assert_allclose(stats.mean["action"], np.nanmean(action, axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats.std["action"], np.nanstd(action, axis=0), rtol=1e-9)
    proprio = columns["proprio"].astype(np.float64)
    np.testing.assert_allclose(stats.mean["proprio"], proprio.mean(axis=0), rtol=1e-10)
    assert stats.std["proprio"][1] == 1.0  # constant dimension: normalising is only a shift
    np.testing.assert_allclose(stats.std["proprio"][[0, 2]], proprio.std(axis=0)[[0, 2]], rtol=1e-9)

    normalised = stats.normalize("action", columns["action"])
    assert normalised.dtype == np.float32
    assert np.isnan(normalised).sum() == np.isnan(columns["action"]).sum()  # NaN stays NaN
    np.testing.assert_allclose(np.nanmean(normalised, axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.nanstd(normalised, axis=0), 1.0, atol=1e-5)
    shifted = stats.normalize("proprio", columns["proprio"])
    np.testing.assert_allclose(shifted[:, 1], 0.0)


@pytest.mark.parametrize("chunk_rows", [3, 65536])
def test_stats_restricted_to_rows(noisy_file, chunk_rows: int) -> None:
    path, columns = noisy_file
    with EpisodeFile(path) as file:
        rows = file.episode_rows([0, 2])  # the training episodes, say
        stats = compute_stats(file, ["action"], rows=rows, chunk_rows=chunk_rows)
        sparse = np.array([1, 2, 40, 41, 59])
        sparse_stats = compute_stats(file, ["action"], rows=sparse, chunk_rows=chunk_rows)
    subset = columns["action"][rows].astype(np.float64)
    np.testing.assert_allclose(stats.mean["action"], np.nanmean(subset, axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats.std["action"], np.nanstd(subset, axis=0), rtol=1e-9)
    picked = columns["action"][sparse].astype(np.float64)
    np.testing.assert_allclose(sparse_stats.mean["action"], np.nanmean(picked, axis=0), rtol=1e-10)


def test_std_floor_and_all_nan_dimension(files) -> None:
    columns = files.layout()
    columns["action"][:, 0] = np.nan
    columns["action"][:, 1] = 0.0
    columns["action"][5, 1] = 1e-9  # not constant, but spread far below the floor
    path = files.write("tiny_spread.h5", columns)
    with EpisodeFile(path) as file:
        stats = compute_stats(file, ["action"])
    assert stats.mean["action"][0] == 0.0 and stats.std["action"][0] == 1.0
    assert stats.std["action"][1] == pytest.approx(1e-6)


def test_missing_or_bad_column(hand_file) -> None:
    with EpisodeFile(hand_file) as file:
        with pytest.raises(LewmError, match=re.escape(hand_file.name) + ".*missing column 'state'"):
            compute_stats(file, ["state"])
        with pytest.raises(ValueError, match="rows must lie in"):
            compute_stats(file, ["action"], rows=np.array([5, 61]))
        shuffled = compute_stats(file, ["action"], rows=np.array([40, 3, 5, 3]))
        ordered = compute_stats(file, ["action"], rows=np.array([3, 5, 40]))
        np.testing.assert_array_equal(shuffled.mean["action"], ordered.mean["action"])
        np.testing.assert_array_equal(shuffled.std["action"], ordered.std["action"])


def test_round_trip_through_json_and_torch() -> None:
    stats = NormStats(mean={"action": np.array([1.0, -2.0])}, std={"action": np.array([0.5, 4.0])})
    back = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    np.testing.assert_array_equal(back.mean["action"], stats.mean["action"])
    np.testing.assert_array_equal(back.std["action"], stats.std["action"])

    x = np.array([[2.0, 2.0], [1.0, -2.0]], dtype=np.float32)  # (B, A)
    z = back.normalize("action", x)
    np.testing.assert_allclose(z, [[2.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(back.denormalize("action", z), x)
    tz = back.normalize("action", torch.from_numpy(x))
    assert isinstance(tz, torch.Tensor) and tz.dtype == torch.float32
    np.testing.assert_allclose(tz.numpy(), z)
    np.testing.assert_allclose(back.denormalize("action", tz).numpy(), x)

    with pytest.raises(LewmError, match="no column 'proprio'"):
        back.normalize("proprio", x)
    with pytest.raises(LewmError, match="column 'action' has 2 dims"):
        back.normalize("action", np.zeros((4, 3)))
    with pytest.raises(LewmError, match="run.yaml.*'mean' and 'std'"):
        NormStats.from_dict({"mean": {}}, where="run.yaml")
    with pytest.raises(LewmError, match="column 'action' has a std that is not a positive"):
        NormStats.from_dict({"mean": {"action": [0.0]}, "std": {"action": [0.0]}})
