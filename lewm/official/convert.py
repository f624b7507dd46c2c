"""`import_official`: an official LeWM checkpoint -> a lewm run directory; `export_official`: the way back.

An imported run is an ordinary run directory (config.yaml, normalization.json, checkpoints/last.pt, plus
import.json saying where it came from), so `lewm eval`, `probe`, `surprise`, `straightness`, `report` and
`export` work on it. What the official format leaves out is supplied here:
- the split of `action_encoder.input_dim` into frameskip x action size, from `--frameskip`, the action size of
  `--env` or of `--data`'s action column, or a `lewm.json` side file;
- the action statistics, computed from `--data` as the official pipeline does (mean and unbiased std of the
  action column, rows holding a NaN dropped), or read from `lewm.json`; without either, identity statistics.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lewm.config import preset
from lewm.data import EpisodeFile, NormStats
from lewm.envs import make
from lewm.errors import LewmError
from lewm.model import LeWM
from lewm.official.config import read_official_config, write_official_config
from lewm.official.folder import OfficialFolder, read_weights, resolve, write_folder
from lewm.official.keys import to_transformers4_names
from lewm.runs import load_run, write_model_run
from lewm.utils.io import atomic_write_text

SIDE_FORMAT = 1
"""Version of lewm.json's layout."""
OFFICIAL_PART_ORDER = ("encoder", "predictor", "action_encoder", "projector", "pred_proj")


@dataclass
class ImportReport:
    """What `import_official` wrote and decided."""

    run_dir: Path
    frameskip: int
    action_dim: int
    split_from: str
    """Where the frameskip x action-size split came from (a flag, the data, the env or lewm.json)."""
    stats_from: str
    """Where the action statistics came from."""
    parameters: int
    warnings: list[str] = field(default_factory=list)


def official_action_stats(data_path: Path, action_key: str = "action") -> np.ndarray:
    """(2, A) mean and std of the action column as the official pipeline computes them: rows with any NaN
    dropped, then the mean and the unbiased (n - 1) std per dimension. A constant dimension gets std 1 (the
    official z-score would divide by zero there)."""
    with EpisodeFile(data_path, action_key=action_key) as data:
        actions = np.asarray(data.dataset(action_key)[:], dtype=np.float64)
    actions = actions.reshape(len(actions), -1)  # N A
    actions = actions[~np.isnan(actions).any(axis=1)]
    if len(actions) < 2:
        raise LewmError(f"{data_path}: column {action_key!r} has {len(actions)} rows without NaN; action "
                        "statistics need at least 2")
    std = actions.std(axis=0, ddof=1)
    return np.stack([actions.mean(axis=0), np.where(std > 0, std, 1.0)])


def _side_int(side: dict[str, Any], name: str) -> int:
    """lewm.json's `name` (frameskip or action_dim): an integer >= 1, else a one-line error naming it."""
    value = side[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LewmError(f"lewm.json: {name} = {value!r} must be an integer >= 1")
    return value


def _action_sizes(env: str | None, data: Path | None, side: dict[str, Any] | None,
                  action_key: str) -> list[tuple[str, int]]:
    """(where, action size) from every source given, for the split and its consistency check."""
    sizes = []
    if env is not None:
        shape = make(env).action_space.shape
        sizes.append((f"--env {env}", int(np.prod(shape))))
    if data is not None:
        with EpisodeFile(data, action_key=action_key) as file:
            sizes.append((f"--data {data} (column {action_key!r})", int(file.action_dim)))
    if side is not None and "action_dim" in side:
        sizes.append(("lewm.json", _side_int(side, "action_dim")))
    return sizes


def split_action_block(block_dim: int, frameskip: int | None, sizes: list[tuple[str, int]],
                       side: dict[str, Any] | None) -> tuple[int, int, str]:
    """(frameskip, action size, where from) for an action encoder whose input is `block_dim` wide."""
    for (where_a, a), (where_b, b) in zip(sizes, sizes[1:], strict=False):
        if a != b:
            raise LewmError(f"inconsistent action sizes: {where_a} has {a}, {where_b} has {b}")
    if frameskip is not None:
        if frameskip < 1 or block_dim % frameskip:
            raise LewmError(f"--frameskip {frameskip} does not divide action_encoder.input_dim {block_dim}")
        if sizes and sizes[0][1] * frameskip != block_dim:
            raise LewmError(f"--frameskip {frameskip} x action size {sizes[0][1]} ({sizes[0][0]}) is not "
                            f"action_encoder.input_dim {block_dim}")
        return frameskip, block_dim // frameskip, "--frameskip"
    if sizes:
        where, size = sizes[0]
        if block_dim % size:
            raise LewmError(f"action_encoder.input_dim {block_dim} is not a multiple of the action size {size} "
                            f"({where})")
        return block_dim // size, size, where
    if side is not None and "frameskip" in side:
        skip = _side_int(side, "frameskip")
        if block_dim % skip:
            raise LewmError(f"lewm.json: frameskip {skip} does not divide action_encoder.input_dim {block_dim}")
        return skip, block_dim // skip, "lewm.json"
    raise LewmError(f"action_encoder.input_dim {block_dim} is frameskip x action size, and nothing says which: "
                    "pass --frameskip N, --env NAME or --data F.h5")


def _side_stats(side: dict[str, Any], action_dim: int) -> np.ndarray | None:
    stats = side.get("action_stats")
    if stats is None:
        return None
    try:
        values = np.array([stats["mean"], stats["std"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as error:
        raise LewmError("lewm.json: action_stats must hold 'mean' and 'std' lists of numbers") from error
    if values.shape != (2, action_dim):
        raise LewmError(f"lewm.json: action_stats hold {values.shape[-1]} dims, the model's actions have {action_dim}")
    if not (np.isfinite(values).all() and (values[1] > 0).all()):
        raise LewmError("lewm.json: action_stats must be finite numbers, with every std > 0")
    return values


def _action_stats(data: Path | None, side: dict[str, Any] | None, action_dim: int,
                  action_key: str) -> tuple[NormStats, str, list[str]]:
    """The run's statistics, where they came from, and a warning when there were none to take."""
    values, origin, notes = None, "", []
    if data is not None:
        values, origin = official_action_stats(data, action_key), f"--data {data}"
    elif side is not None and (values := _side_stats(side, action_dim)) is not None:
        origin = "lewm.json"
    if values is None:
        values, origin = np.stack([np.zeros(action_dim), np.ones(action_dim)]), "identity"
        notes.append("no --data: action statistics are the identity (mean 0, std 1), so planning assumes the "
                     "model was trained on raw actions; pass the training data with --data F.h5 to normalise "
                     "as the official pipeline did")
    return NormStats(mean={action_key: values[0]}, std={action_key: values[1]}), origin, notes


def load_official_weights(model: LeWM, state: dict[str, torch.Tensor], where: str) -> None:
    """Load an official state dict (either ViT naming) into `model`; a key or shape that does not fit is a
    one-line `LewmError` naming it, before anything is copied."""
    state = to_transformers4_names(state)
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        problem = (f"{len(missing)} tensor(s) the config needs are missing (first: {missing[0]})" if missing else
                   f"{len(unexpected)} tensor(s) the config has no place for (first: {unexpected[0]})")
        raise LewmError(f"{where}: the weights do not fit config.json: {problem}")
    for key, target in expected.items():
        shape = tuple(state[key].shape)
        if key.endswith("action_encoder.patch_embed.weight") and len(shape) == 3 and shape[-1] == 1:
            shape = shape[:-1]  # the official kernel-1 Conv1d; lewm's Linear takes it without the last axis
        if shape != tuple(target.shape):
            raise LewmError(f"{where}: the weights do not fit config.json: {key} is {shape} in the weights, "
                            f"{tuple(target.shape)} under the config")
    model.load_state_dict(state, strict=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_official(source: str | Path, out: Path, frameskip: int | None = None, data: Path | None = None,
                    env: str | None = None, action_key: str = "action") -> ImportReport:
    """Write the official checkpoint `source` (folder or hf:OWNER/NAME[@REV]) as the lewm run directory `out`."""
    if (Path(out) / "checkpoints" / "last.pt").exists():
        raise LewmError(f"{out}: already holds a run (checkpoints/last.pt); pass another --out")
    data = Path(data).resolve() if data is not None else None
    if data is not None and not data.is_file():
        raise LewmError(f"{data}: --data file does not exist")
    folder: OfficialFolder = resolve(str(source))
    model_config = read_official_config(folder.config, where=f"{folder.source}/config.json")
    sizes = _action_sizes(env, data, folder.side, action_key)
    skip, action_dim, split_from = split_action_block(model_config.action_block_dim, frameskip, sizes, folder.side)
    model_config.frameskip, model_config.action_dim = skip, action_dim  # the same block size, split
    stats, stats_from, notes = _action_stats(data, folder.side, action_dim, action_key)
    model = LeWM(model_config)
    load_official_weights(model, read_weights(folder.weights), f"{folder.source}/weights.pt")
    config = preset("paper")
    config.data_path, config.out, config.model = data, Path(out), model_config
    config.data.action_key = action_key
    config.validate()
    provenance = {"source": str(folder.source), "revision": folder.revision, "weights_sha256": _sha256(folder.weights),
                  "frameskip": skip, "action_dim": action_dim, "split_from": split_from, "stats_from": stats_from}
    write_model_run(Path(out), model, config, stats, step=0, extra={"imported_from": provenance})
    atomic_write_text(Path(out) / "import.json", json.dumps(provenance, indent=1) + "\n")
    return ImportReport(run_dir=Path(out), frameskip=skip, action_dim=action_dim, split_from=split_from,
                        stats_from=stats_from, parameters=model.parameter_counts()["total"], warnings=notes)


def official_state_dict(model: LeWM) -> dict[str, torch.Tensor]:
    """`model`'s weights as the official code names and shapes them (transformers-4 ViT keys, as released;
    the action encoder's first layer as the official kernel-1 Conv1d weight (out, in, 1))."""
    ours = model.state_dict()
    state = {}
    for part in OFFICIAL_PART_ORDER:  # the order the official LeWM registers its parts, so files diff cleanly
        for key, value in ours.items():
            if key.startswith(part + "."):
                if key == "action_encoder.patch_embed.weight":
                    value = value.unsqueeze(-1)  # (patch, block) -> (patch, block, 1)
                state[key] = value.detach().to("cpu").clone().contiguous()
    if len(state) != len(ours):
        raise AssertionError(f"unexported tensors: {sorted(set(ours) - set(state))}")  # a new part needs a place
    return state


def export_official(run_dir: Path, out: Path, checkpoint: str = "last.pt") -> Path:
    """Write RUN_DIR's model as an official checkpoint folder `out` (weights.pt, config.json, lewm.json)."""
    run = load_run(Path(run_dir), "cpu", checkpoint=checkpoint)
    official_config = write_official_config(run.config.model, where=f"{run_dir}: model")
    key = run.config.data.action_key
    if key not in run.stats.mean:
        raise LewmError(f"{run_dir}: the run's statistics have no column {key!r}")
    side = {
        "format": SIDE_FORMAT,
        "note": "lewm's additions; the official loader reads only weights.pt and config.json",
        "frameskip": run.config.model.frameskip, "action_dim": run.config.model.action_dim, "action_key": key,
        "action_stats": {"mean": [float(v) for v in run.stats.mean[key]],
                         "std": [float(v) for v in run.stats.std[key]]},
        "step": run.step, "run": str(Path(run_dir).resolve()),
    }
    if not all(math.isfinite(v) for v in side["action_stats"]["mean"] + side["action_stats"]["std"]):
        raise LewmError(f"{run_dir}: the run's action statistics are not finite")
    write_folder(Path(out), official_state_dict(run.model), official_config, side)
    return Path(out)
