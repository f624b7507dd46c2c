"""The run directory's config.yaml: every preset round-trips (paths stay paths, Literal fields keep their value),
files written by earlier versions still load, and a bad file is one line naming the field path and the value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from lewm.config import PRESETS, TrainConfig, from_dict, load_train_config, preset, save_yaml, to_dict
from lewm.errors import LewmError

FIRST_VERSION_YAML = """\
data_path: /data/dots.h5
out: runs/tiny
preset: tiny
steps: 30
epochs: null
resume: false
seed: 0
device: auto
precision: auto
compile: false
sync_batchnorm: true
log_every: 5
checkpoint_every: 10
keep_step_checkpoints: false
max_val_batches: 4
threads: null
progress: false
model:
  encoder: {image_size: 32, patch_size: 8, width: 32, depth: 1, heads: 2, mlp_dim: 64}
  predictor: {depth: 1, heads: 2, head_dim: 16, mlp_dim: 64, dropout: 0.1}
  embed_dim: 32
  projector_hidden: 64
  action_hidden: 64
  action_patch: 10
  history: 3
  frameskip: 5
  action_dim: null
objective: {sigreg_weight: 0.1, num_projections: 64, num_knots: 17, knot_max: 3.0}
data: {num_preds: 1, val_fraction: 0.1, num_workers: 0, pixels_key: pixels, action_key: action}
optim: {batch_size: 16, lr: 0.001, weight_decay: 0.001, warmup_fraction: 0.1, grad_clip: 1.0}
"""
"""The tiny preset's config.yaml as the first version (aea2e7f) wrote it: no objective.kind, objective.pldm or
val_every yet, and num_workers an int."""


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_round_trips_through_yaml(name: str, tmp_path: Path) -> None:
    config = preset(name)
    config.data_path, config.out = tmp_path / "data.h5", Path("relative/run")
    config.precision, config.objective.kind, config.objective.pldm.variance = "bf16", "pldm", 5.0
    config.model.action_dim, config.val_every = 2, 7
    save_yaml(config, tmp_path / "config.yaml")
    back = load_train_config(tmp_path / "config.yaml")
    assert back == config
    assert isinstance(back.data_path, Path) and isinstance(back.out, Path)
    assert (back.precision, back.objective.kind) == ("bf16", "pldm")
    assert to_dict(back) == yaml.safe_load((tmp_path / "config.yaml").read_text())  # plain YAML, paths as text


def test_a_config_written_by_the_first_version_still_loads(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(FIRST_VERSION_YAML)
    loaded = load_train_config(tmp_path / "config.yaml")
    expected = preset("tiny")
    expected.data_path, expected.out, expected.data.num_workers = Path("/data/dots.h5"), Path("runs/tiny"), 0
    assert loaded == expected  # fields added since then take their defaults
    assert loaded.objective.kind == "lewm" and loaded.val_every is None


def test_an_integer_in_a_float_field_is_that_float() -> None:
    assert from_dict(TrainConfig, {"optim": {"lr": 1}}).optim.lr == 1.0
    assert isinstance(from_dict(TrainConfig, {"optim": {"lr": 1}}).optim.lr, float)


@pytest.mark.parametrize(("path", "value", "message"), [
    ("model.encoder.depth", "x", "model.encoder.depth = 'x' is invalid: must be int"),
    ("model.encoder.dept", 3, "model.encoder.dept = 3 is invalid: EncoderConfig has no such field"),
    ("objective.pldm.nu", 1.0, "objective.pldm.nu = 1.0 is invalid: PLDMConfig has no such field"),
    ("bogus", True, "bogus = True is invalid: TrainConfig has no such field"),
    ("precision", "fp16", "precision = 'fp16' is invalid: must be one of 'auto', 'bf16', 'fp32'"),
    ("objective.kind", "vicreg", "objective.kind = 'vicreg' is invalid: must be one of 'lewm', 'pldm'"),
    ("steps", 2.5, "steps = 2.5 is invalid: must be int or None"),
    ("out", 3, "out = 3 is invalid: must be a path or None"),
    ("resume", "yes", "resume = 'yes' is invalid: must be bool"),
    ("model", [1], r"model = \[1\] is invalid: must be a mapping of ModelConfig fields"),
])
def test_a_bad_field_is_one_line_naming_its_path_and_value(tmp_path: Path, path: str, value, message: str) -> None:
    values = to_dict(preset("tiny"))
    *parents, leaf = path.split(".")
    section = values
    for key in parents:
        section = section[key]
    section[leaf] = value
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(values))
    with pytest.raises(LewmError, match=f"^{re.escape(str(file))}: {message}$") as error:
        load_train_config(file)
    assert "\n" not in str(error.value)


def test_unreadable_files_and_invalid_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(LewmError, match="missing.yaml: config file does not exist"):
        load_train_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(LewmError, match="list.yaml: expected a mapping, got list"):
        load_train_config(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("model: {encoder: [\n")
    with pytest.raises(LewmError, match="broken.yaml: not valid YAML"):
        load_train_config(tmp_path / "broken.yaml")
    with pytest.raises(LewmError, match="model.encoder.depth = 0 is invalid: must be an integer >= 1"):
        from_dict(TrainConfig, {"model": {"encoder": {"depth": 0}}})  # the well-typed value is still validated
