"""Probing: how much of a physical quantity can be read back from frozen frame embeddings (docs/reference.md section 8).

Frames of held-out episodes are encoded by a trained run's encoder + projector (eval mode, no gradients), and
linear (ridge) and small MLP probes (scikit-learn) are fitted on the embeddings of training episodes to predict
a target column (`proprio`, `state`, or a slice such as `state[0:2]`), or an angle as its (cos, sin) pair
(`sincos(state[4])`: a raw angle in [0, 2 pi) jumps where it wraps, which no smooth probe can follow, so a
raw-angle probe would report a low r even for embeddings that hold the angle exactly). Targets are z-scored
with the training episodes' statistics, so the reported MSE is in units of the target's standard deviation
(docs/reference.md section 8, the paper's LeWM Two-Room figure: MSE 0.008, Pearson r 0.996). Episodes, never
frames, are split, so a probe is never tested on frames adjacent to ones it was fitted on.

Shapes: N frames, D embedding dim, K target dims.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPRegressor
from tqdm import tqdm

from lewm.config import check_field, check_positive_ints
from lewm.data import EpisodeFile
from lewm.envs.pusht import wrap_angle
from lewm.errors import LewmError
from lewm.runs import LoadedRun, as_run, encode_frames, run_data_path
from lewm.utils.device import resolve_device

_TARGET = re.compile(r"^(?P<column>[A-Za-z_][\w/]*)(\[(?P<start>\d*)(?P<colon>:?)(?P<stop>\d*)\])?$")
_SINCOS = re.compile(r"^sincos\(\s*(?P<column>[A-Za-z_][\w/]*)\[(?P<index>\d+)\]\s*\)$")


@dataclass(frozen=True)
class ProbeTarget:
    """A parsed probe target: the dims of a column, or with `sincos` one angle dim probed as (cos, sin)."""

    column: str
    dims: slice
    sincos: bool = False

    def values(self, picked: np.ndarray) -> np.ndarray:
        """(N, K) picked column values -> (N, K) as they are, or (N, 2) (cos, sin) of the one angle dim."""
        if not self.sincos:
            return picked
        return np.column_stack([np.cos(picked[:, 0]), np.sin(picked[:, 0])])


@dataclass
class ProbeConfig:
    """How probes are fitted."""

    max_frames: int = 20_000
    """Frames sampled (uniformly, seeded) from the file; all of them when the file is smaller."""
    test_fraction: float = 0.2
    """Share of episodes held out for testing."""
    seed: int = 0
    """Seed of the episode split, the frame sample and the MLP's initialisation."""
    ridge_alpha: float = 1e-3
    """L2 penalty of the linear probe (on z-scored embeddings)."""
    mlp_hidden: int = 256
    """Width of the MLP probe's two hidden layers."""
    mlp_epochs: int = 200
    """Maximum training epochs of the MLP probe (early stopping on a 10% validation split)."""
    batch_size: int = 256
    """Frames encoded at once."""
    fit_mlp: bool = True
    """Also fit the MLP probe (the lambda search scores with the linear one alone)."""

    def validate(self) -> None:
        check_positive_ints(self, ("max_frames", "mlp_hidden", "mlp_epochs", "batch_size"), "", where="probe")
        check_field(0.0 < self.test_fraction < 1.0, "test_fraction", self.test_fraction, "must be in (0, 1)",
                    where="probe")
        check_field(self.ridge_alpha >= 0.0, "ridge_alpha", self.ridge_alpha, "must be >= 0", where="probe")


def parse_probe_target(target: str) -> ProbeTarget:
    """'state' -> all dims; 'state[0:2]' -> dims 0-1; 'state[4]' -> dim 4; 'sincos(state[4])' -> dim 4 as
    (cos, sin)."""
    text = target.strip()
    if text.startswith("sincos("):
        match = _SINCOS.match(text)
        if match is None:
            raise LewmError(f"probe: target {target!r} is invalid: use sincos(COLUMN[INDEX]) with one index")
        index = int(match["index"])
        return ProbeTarget(match["column"], slice(index, index + 1), sincos=True)
    match = _TARGET.match(text)
    if match is None:
        raise LewmError(f"probe: target {target!r} is invalid: use a column name, optionally with [i] or [i:j], "
                        "or sincos(COLUMN[INDEX])")
    column, start, colon, stop = match["column"], match["start"], match["colon"], match["stop"]
    if match.group(2) is None:
        return ProbeTarget(column, slice(None))
    if not colon:
        if not start:
            raise LewmError(f"probe: target {target!r} is invalid: empty index")
        return ProbeTarget(column, slice(int(start), int(start) + 1))
    return ProbeTarget(column, slice(int(start) if start else None, int(stop) if stop else None))


def parse_target(target: str) -> tuple[str, slice]:
    """(column, dims) of a target (see `parse_probe_target`), for callers that only need the column."""
    parsed = parse_probe_target(target)
    return parsed.column, parsed.dims


def _scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """MSE and Pearson r overall (mean over dims) and per target dim; inputs (N, K), z-scored."""
    per_r = [float(pearsonr(predicted[:, k], truth[:, k]).statistic) if truth[:, k].std() > 0 else float("nan")
             for k in range(truth.shape[1])]
    per_mse = ((predicted - truth) ** 2).mean(axis=0)
    return {"mse": float(per_mse.mean()), "r": float(np.nanmean(per_r)), "mse_per_dim": per_mse.tolist(),
            "r_per_dim": per_r}


def _angle_errors(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Angle errors (radians, wrapped to [-pi, pi]) of (N, 2) predicted vs true (cos, sin) pairs, read back with
    atan2 — the quantity a Push-T success test cares about (block angle within pi/9), which r does not show."""
    error = np.abs(wrap_angle(np.arctan2(predicted[:, 1], predicted[:, 0]) - np.arctan2(truth[:, 1], truth[:, 0])))
    return {"angle_rmse_rad": float(np.sqrt(np.mean(error**2))), "angle_median_abs_rad": float(np.median(error))}


def fit_probes(inputs: np.ndarray, values: np.ndarray, is_test: np.ndarray, config: ProbeConfig,
               sincos: bool = False, on_fitted: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Fit the linear (and MLP) probe from (N, D) z-scored embeddings to (N, K) target values on the frames not
    in `is_test` and score it on the others: {"linear": {...}, "mlp": {...}, "dims": K}. Rows with a non-finite
    target are left out. With `sincos` (values are (cos, sin) pairs) the scores add the angle errors.
    `on_fitted(name)` is called after each probe is fitted (a progress bar's update)."""
    valid = np.isfinite(values).all(axis=1)
    train, test = ~is_test & valid, is_test & valid
    t_mean, t_std = values[train].mean(0), values[train].std(0) + 1e-8
    scaled = (values - t_mean) / t_std  # N K
    fit_targets = scaled[train] if scaled.shape[1] > 1 else scaled[train, 0]  # sklearn wants (N,) for one dim
    models: dict[str, Any] = {"linear": Ridge(alpha=config.ridge_alpha)}
    if config.fit_mlp:
        models["mlp"] = MLPRegressor(hidden_layer_sizes=(config.mlp_hidden, config.mlp_hidden),
                                     max_iter=config.mlp_epochs, early_stopping=True, random_state=config.seed)
    result: dict[str, Any] = {}
    for name, model in models.items():
        with warnings.catch_warnings():  # stopping at mlp_epochs before convergence is the intended budget
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(inputs[train], fit_targets)
        predicted = model.predict(inputs[test]).reshape(-1, scaled.shape[1])
        result[name] = _scores(predicted, scaled[test])
        if sincos:
            result[name].update(_angle_errors(predicted * t_std + t_mean, values[test]))
        if on_fitted is not None:
            on_fitted(name)
    result["dims"] = int(scaled.shape[1])
    return result


def _encode_rows(run: LoadedRun, pixels: Any, rows: np.ndarray, device: torch.device, batch_size: int,
                 progress: bool) -> np.ndarray:
    """(N,) sorted rows of the pixel column -> (N, D) float64 embeddings, read and encoded `batch_size` frames at a
    time (a bar of frames on stderr with `progress`)."""
    out = []
    with tqdm(total=len(rows), desc="probe encode", unit="frame", dynamic_ncols=True, disable=not progress) as bar:
        for begin in range(0, len(rows), batch_size):
            chunk = rows[begin : begin + batch_size]
            out.append(encode_frames(run.model, pixels[chunk], device).double().cpu().numpy())  # n D
            bar.update(len(chunk))
    return np.concatenate(out)  # N D


def _fit_all(inputs: np.ndarray, target_values: dict[str, np.ndarray], is_test: np.ndarray, config: ProbeConfig,
             sincos: dict[str, bool], progress: bool) -> dict[str, Any]:
    """`fit_probes` for every target, with a bar of probes fitted (linear, and MLP unless fit_mlp is off)."""
    results: dict[str, Any] = {}
    total = len(target_values) * (2 if config.fit_mlp else 1)
    with tqdm(total=total, desc="probe fit", unit="probe", dynamic_ncols=True, disable=not progress) as bar:
        for target, values in target_values.items():
            bar.set_postfix_str(target)
            results[target] = fit_probes(inputs, values, is_test, config, sincos=sincos[target],
                                         on_fitted=lambda _name: bar.update())
    return results


def probe(run_dir: Path | LoadedRun, targets: list[str], data_path: Path | None = None,
          config: ProbeConfig | None = None, device: str = "auto", progress: bool = True) -> dict[str, Any]:
    """Fit linear and MLP probes from a run's (directory or `LoadedRun`) frozen embeddings to each target; returns
    {target: {"linear": {"mse", "r", ...}, "mlp": {...}, "dims": K}, "_meta": {...}}. `progress`: bars of frames
    encoded and probes fitted on stderr."""
    config = config or ProbeConfig()
    config.validate()
    parsed_targets = {target: parse_probe_target(target) for target in targets}  # a bad form fails before loading
    device = resolve_device(device)
    run = as_run(run_dir, device)
    run_dir = run.run_dir
    data_path = run_data_path(run, data_path)
    with EpisodeFile(data_path, pixels_key=run.config.data.pixels_key,
                     action_key=run.config.data.action_key) as data:
        columns = {}
        for target, parsed in parsed_targets.items():
            column, dims = parsed.column, parsed.dims
            if column not in data.columns:
                raise LewmError(f"{data_path}: no column {column!r} to probe (columns: {', '.join(data.columns)})")
            values = data.dataset(column)
            width = int(np.prod(values.shape[1:], dtype=np.int64))
            picked = np.arange(width)[dims]
            if picked.size == 0:
                raise LewmError(f"probe: target {target!r} selects no dimension of {column!r} ({width} dims)")
            columns[target] = (parsed, picked)
        if data.num_episodes < 2:
            raise LewmError(f"{data_path}: {data.num_episodes} episode(s): probing needs at least 2 (train and test "
                            "episodes are kept apart)")
        rng = np.random.default_rng(config.seed)
        episodes = rng.permutation(data.num_episodes)
        held = max(1, int(round(config.test_fraction * data.num_episodes)))
        test_eps, train_eps = np.sort(episodes[:held]), np.sort(episodes[held:])
        rows = np.arange(data.num_rows)
        if len(rows) > config.max_frames:
            rows = np.sort(rng.choice(rows, size=config.max_frames, replace=False))
        episode_of = np.searchsorted(data.ep_offset, rows, side="right") - 1  # N
        is_test = np.isin(episode_of, test_eps)
        if is_test.all() or not is_test.any():
            raise LewmError(f"{data_path}: too few frames to split into train and test episodes")
        pixels = data.dataset(run.config.data.pixels_key)
        embeddings = _encode_rows(run, pixels, rows, device, config.batch_size, progress)  # N D
        target_values = {  # target -> (N, K) values to regress
            t: p.values(np.asarray(data.dataset(p.column)[rows], dtype=np.float64).reshape(len(rows), -1)[:, picked])
            for t, (p, picked) in columns.items()}

    mean, std = embeddings[~is_test].mean(0), embeddings[~is_test].std(0) + 1e-8
    inputs = (embeddings - mean) / std
    results = _fit_all(inputs, target_values, is_test, config, {t: p.sincos for t, (p, _) in columns.items()},
                       progress)
    results["_meta"] = {"run": str(run_dir), "data": str(data_path), "checkpoint_step": run.step,
                        "train_frames": int((~is_test).sum()), "test_frames": int(is_test.sum()),
                        "train_episodes": len(train_eps), "test_episodes": len(test_eps),
                        "mse_units": "z-scored target (train-episode mean/std)"}
    return results
