"""lewm import / export against official-format folders: the round trip, either ViT naming, the official action
statistics, the frameskip x action-size split, and the configs lewm refuses to turn into a different model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from lewm.config import preset
from lewm.data import NormStats, write_episodes
from lewm.errors import LewmError
from lewm.model import LeWM
from lewm.official import (
    export_official,
    import_official,
    official_action_stats,
    read_official_config,
    split_action_block,
    to_transformers5_names,
    uses_transformers5_names,
)
from lewm.runs import load_checkpoint, load_run, write_model_run

PATCH_EMBED = "action_encoder.patch_embed.weight"  # the official kernel-1 Conv1d (out, in, 1); lewm's Linear (out, in)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _load_json(path: Path):
    return json.loads(path.read_text())


def _model_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def _assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key


def _write_actions_file(path: Path, actions: np.ndarray, episode_lengths: list[int]) -> Path:
    """A community-layout file with the given action rows (2x2 black frames)."""
    episodes, start = [], 0
    for length in episode_lengths:
        episodes.append({"pixels": np.zeros((length, 2, 2, 3), np.uint8), "action": actions[start:start + length]})
        start += length
    assert start == len(actions)
    write_episodes(path, episodes)
    return path


@pytest.fixture
def nan_actions_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """3 episodes of 2-D actions (mean and spread far from 0 and 1): each episode's last row all NaN, and one
    row with a NaN in its second entry only. Returns the file and the action rows as written (float32)."""
    rng = np.random.default_rng(7)
    actions = (rng.normal(size=(21, 2)) * [0.5, 3.0] + [2.0, -1.0]).astype(np.float32)
    actions[[6, 13, 20]] = np.nan  # no action after an episode's last frame
    actions[3, 1] = np.nan  # a row with one NaN entry: the whole row is dropped, not just that entry
    return _write_actions_file(tmp_path / "nan_actions.h5", actions, [7, 7, 7]), actions


# -- 1. round trip ---------------------------------------------------------------------------------------


def test_import_then_export_gives_back_the_released_files(official: ModuleType, official_folder: Path,
                                                         tmp_path: Path) -> None:
    report = import_official(official_folder, tmp_path / "run", frameskip=5)
    assert (report.frameskip, report.action_dim, report.split_from) == (5, 2, "--frameskip")
    assert report.stats_from == "identity" and len(report.warnings) == 1
    released = official.build_official(_load_json(official_folder / "config.json"))
    assert report.parameters == sum(p.numel() for p in released.parameters())

    out = export_official(tmp_path / "run", tmp_path / "exported")
    original, exported = torch.load(official_folder / "weights.pt"), torch.load(out / "weights.pt")
    _assert_same_tensors(original, exported)
    assert exported[PATCH_EMBED].dim() == 3  # back to the Conv1d shape the official code loads
    assert _load_json(out / "config.json") == _load_json(official_folder / "config.json")
    side = _load_json(out / "lewm.json")
    assert (side["frameskip"], side["action_dim"], side["action_key"]) == (5, 2, "action")
    assert side["action_stats"] == {"mean": [0.0, 0.0], "std": [1.0, 1.0]}

    # The exported folder imports again with no flags: lewm.json holds the split and the statistics.
    again = import_official(out, tmp_path / "run2")
    assert (again.frameskip, again.action_dim, again.split_from, again.stats_from) == (5, 2, "lewm.json",
                                                                                       "lewm.json")
    assert again.warnings == []
    _assert_same_tensors(_model_state(tmp_path / "run"), _model_state(tmp_path / "run2"))
    first, second = load_run(tmp_path / "run").stats, load_run(tmp_path / "run2").stats
    assert first.to_dict() == second.to_dict()
    assert load_run(tmp_path / "run2").config.model == load_run(tmp_path / "run").config.model


def test_imported_run_records_where_it_came_from(official_folder: Path, tmp_path: Path) -> None:
    import_official(official_folder, tmp_path / "run", frameskip=5)
    provenance = _load_json(tmp_path / "run" / "import.json")
    assert provenance["source"] == str(official_folder.resolve()) and provenance["revision"] is None
    assert provenance["weights_sha256"] == hashlib.sha256((official_folder / "weights.pt").read_bytes()).hexdigest()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["imported_from"] == provenance
    run = load_run(tmp_path / "run")
    assert (run.config.model.frameskip, run.config.model.action_dim, run.step) == (5, 2, 0)
    assert run.config.data_path is None


# -- 2. either ViT naming --------------------------------------------------------------------------------


def test_transformers5_names_import_to_the_same_model(official_folder: Path, tmp_path: Path) -> None:
    released = torch.load(official_folder / "weights.pt")
    renamed = to_transformers5_names(released)
    assert uses_transformers5_names(renamed) and not uses_transformers5_names(released)
    assert "encoder.layers.0.attention.q_proj.weight" in renamed
    assert not any(key.startswith("encoder.encoder.layer.") for key in renamed)
    folder5 = tmp_path / "official5"
    folder5.mkdir()
    torch.save(renamed, folder5 / "weights.pt")
    (folder5 / "config.json").write_text((official_folder / "config.json").read_text())

    import_official(official_folder, tmp_path / "run4", frameskip=5)
    import_official(folder5, tmp_path / "run5", frameskip=5)
    ours4, ours5 = _model_state(tmp_path / "run4"), _model_state(tmp_path / "run5")
    _assert_same_tensors(ours4, ours5)
    # and the model holds the released tensors themselves (the Conv1d kernel without its length-1 axis)
    assert set(ours4) == set(released)
    for key, value in released.items():
        assert torch.equal(ours4[key], value.squeeze(-1) if key == PATCH_EMBED else value), key


# -- 3. action statistics from --data --------------------------------------------------------------------


def test_action_statistics_from_data_are_the_official_ones(official_folder: Path, nan_actions_file,
                                                           tmp_path: Path) -> None:
    path, actions = nan_actions_file
    rows = actions[~np.isnan(actions).any(axis=1)].astype(np.float64)
    assert len(rows) == 17  # 21 rows, 3 all-NaN, 1 half-NaN
    mean, std = rows.mean(axis=0), rows.std(axis=0, ddof=1)
    # the alternatives the test must tell apart: population std, and NaN skipped entry by entry
    assert not np.allclose(rows.std(axis=0, ddof=0), std, rtol=1e-3)
    assert not np.allclose(np.nanmean(actions.astype(np.float64), axis=0), mean, rtol=1e-3)
    assert not np.allclose(np.nanstd(actions.astype(np.float64), axis=0, ddof=1), std, rtol=1e-3)

    np.testing.assert_allclose(official_action_stats(path), np.stack([mean, std]), rtol=1e-12)

    report = import_official(official_folder, tmp_path / "run", data=path)
    assert (report.frameskip, report.action_dim) == (5, 2)  # 10 = 5 x the file's 2-D actions
    assert report.stats_from == f"--data {path.resolve()}" and report.warnings == []
    run = load_run(tmp_path / "run")
    np.testing.assert_allclose(run.stats.mean["action"], mean, rtol=1e-12)
    np.testing.assert_allclose(run.stats.std["action"], std, rtol=1e-12)
    normalization = _load_json(tmp_path / "run" / "normalization.json")
    np.testing.assert_allclose(normalization["mean"]["action"], mean, rtol=1e-12)
    np.testing.assert_allclose(normalization["std"]["action"], std, rtol=1e-12)
    assert run.config.data_path == path.resolve()

    # export carries them in lewm.json, and a flagless import of the export reads them back exactly
    export_official(tmp_path / "run", tmp_path / "exported")
    side = _load_json(tmp_path / "exported" / "lewm.json")
    np.testing.assert_allclose(side["action_stats"]["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(side["action_stats"]["std"], std, rtol=1e-12)
    again = import_official(tmp_path / "exported", tmp_path / "run2")
    assert again.stats_from == "lewm.json"
    assert load_run(tmp_path / "run2").stats.to_dict() == run.stats.to_dict()


def test_constant_action_dimension_gets_std_one(tmp_path: Path) -> None:
    actions = np.array([[1.0, 0.5], [2.0, 0.5], [np.nan, 0.5], [4.0, 0.5]], np.float32)
    path = _write_actions_file(tmp_path / "constant.h5", actions, [4])
    stats = official_action_stats(path)
    np.testing.assert_allclose(stats, [[7 / 3, 0.5], [np.std([1.0, 2.0, 4.0], ddof=1), 1.0]], rtol=1e-12)


def test_action_statistics_need_two_rows_without_nan(tmp_path: Path) -> None:
    actions = np.array([[1.0, np.nan], [2.0, 3.0], [np.nan, np.nan]], np.float32)
    path = _write_actions_file(tmp_path / "short.h5", actions, [3])
    with pytest.raises(LewmError, match="1 rows without NaN"):
        official_action_stats(path)


@pytest.mark.parametrize(
    "side",
    [
        {"frameskip": 5, "action_dim": 2, "action_stats": {"mean": [0, 0, 0], "std": [1, 1, 1]}},
        {"frameskip": 5, "action_stats": {"mean": [0, 0]}},
        [5],
        {"frameskip": 0},
        {"frameskip": "five"},
        {"action_dim": "two"},
        {"frameskip": 5, "action_stats": {"mean": [0, 0], "std": [0.0, 1.0]}},
        {"frameskip": 5, "action_stats": {"mean": [0, 0], "std": [float("nan"), 1.0]}},
    ],
    ids=["stats-3-dims", "no-std", "a-list", "frameskip-0", "frameskip-str", "action_dim-str", "std-0", "std-nan"],
)
def test_bad_lewm_json_is_an_error_naming_it(official_folder: Path, tmp_path: Path, side) -> None:
    (official_folder / "lewm.json").write_text(json.dumps(side))
    with pytest.raises(LewmError, match="lewm.json"):
        import_official(official_folder, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# -- 4. the frameskip x action-size split ----------------------------------------------------------------


def test_env_gives_the_frameskip(official_folder: Path, tmp_path: Path) -> None:
    report = import_official(official_folder, tmp_path / "run", env="pusht")
    assert (report.frameskip, report.action_dim, report.split_from) == (5, 2, "--env pusht")
    model = load_run(tmp_path / "run").config.model
    assert (model.frameskip, model.action_dim) == (5, 2)


def test_frameskip_and_env_that_agree_are_fine(official_folder: Path, tmp_path: Path) -> None:
    report = import_official(official_folder, tmp_path / "run", frameskip=5, env="pusht")
    assert (report.frameskip, report.action_dim, report.split_from) == (5, 2, "--frameskip")


@pytest.mark.parametrize(
    ("kwargs", "messages"),
    [
        ({"frameskip": 3}, ["--frameskip 3 does not divide action_encoder.input_dim 10"]),
        ({"frameskip": 2, "env": "pusht"}, ["--frameskip 2 x action size 2 (--env pusht)", "input_dim 10"]),
        ({}, ["--frameskip", "--env", "--data", "action_encoder.input_dim 10"]),
        ({"env": "nowhere"}, ["unknown environment 'nowhere'"]),
    ],
)
def test_split_errors(official_folder: Path, tmp_path: Path, kwargs: dict, messages: list[str]) -> None:
    with pytest.raises(LewmError) as error:
        import_official(official_folder, tmp_path / "run", **kwargs)
    for message in messages:
        assert message in str(error.value)
    assert not (tmp_path / "run").exists()


def test_env_and_data_disagreeing_is_an_error(official_folder: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = _write_actions_file(tmp_path / "five.h5", rng.normal(size=(6, 5)).astype(np.float32), [6])
    # alone, the 5-D file splits 10 as 2 x 5 ...
    alone = import_official(official_folder, tmp_path / "alone", data=path)
    assert (alone.frameskip, alone.action_dim) == (2, 5)
    # ... but pusht's actions are 2-D
    with pytest.raises(LewmError, match="inconsistent action sizes") as error:
        import_official(official_folder, tmp_path / "run", env="pusht", data=path)
    assert "--env pusht has 2" in str(error.value) and "has 5" in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("frameskip", "sizes", "side", "expected"),
    [
        (None, [("--env pusht", 2)], None, (5, 2, "--env pusht")),
        (None, [("--data d.h5", 5)], None, (2, 5, "--data d.h5")),
        (10, [], None, (10, 1, "--frameskip")),
        (None, [], {"frameskip": 5}, (5, 2, "lewm.json")),
        (5, [("--env pusht", 2), ("lewm.json", 2)], {"frameskip": 5}, (5, 2, "--frameskip")),
    ],
)
def test_split_action_block(frameskip, sizes, side, expected) -> None:
    assert split_action_block(10, frameskip, sizes, side) == expected


@pytest.mark.parametrize(
    ("frameskip", "sizes", "message"),
    [
        (None, [("--data d.h5", 3)], "action_encoder.input_dim 10 is not a multiple of the action size 3"),
        (0, [], "--frameskip 0 does not divide"),
        (None, [("--env pusht", 2), ("lewm.json", 5)], "inconsistent action sizes: --env pusht has 2, lewm.json has 5"),
    ],
)
def test_split_action_block_errors(frameskip, sizes, message) -> None:
    with pytest.raises(LewmError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        split_action_block(10, frameskip, sizes, None)


# -- 5. configs lewm cannot represent ----------------------------------------------------------------------


def _set(section: str, field: str, value):
    def change(config: dict) -> None:
        config[section][field] = value
    return change


def _one_head_as_wide_as_the_model(config: dict) -> None:
    config["predictor"].update(heads=1, dim_head=config["predictor"]["hidden_dim"])


def _drop(section: str, field: str):
    def change(config: dict) -> None:
        del config[section][field]
    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set("predictor", "hidden_dim", 64), "predictor.hidden_dim = 64"),
        (_set("predictor", "output_dim", 64), "predictor.output_dim = 64"),
        (_one_head_as_wide_as_the_model, "predictor.heads = 1"),
        (_set("predictor", "emb_dropout", 0.1), "predictor.emb_dropout = 0.1"),
        (_set("pred_proj", "hidden_dim", 128), "pred_proj.hidden_dim = 128"),
        (_set("encoder", "size", "gigantic"), "encoder.size = 'gigantic'"),
        (_set("predictor", "use_bias", True), "predictor.use_bias is not a field"),
        (_drop("predictor", "depth"), "predictor.depth is missing"),
        (_set("predictor", "_target_", "module.Transformer"), "predictor._target_ = 'module.Transformer'"),
        (_set("action_encoder", "_target_", "module.MLP"), "action_encoder._target_ = 'module.MLP'"),
        (_set("projector", "input_dim", 384), "projector.input_dim = 384"),
        (_set("action_encoder", "emb_dim", 64), "action_encoder.emb_dim = 64"),
        (_set("encoder", "patch_size", 7), "encoder.patch_size = 7"),
        (_set("predictor", "depth", 0), "predictor.depth = 0 must be an integer >= 1"),
        (_set("predictor", "dropout", 1.5), "predictor.dropout = 1.5 must be a number in [0, 1)"),
    ],
)
def test_unrepresentable_configs_name_the_field(official_folder: Path, tmp_path: Path, change, field: str) -> None:
    config = _load_json(official_folder / "config.json")
    read_official_config(config)  # the released one is fine ...
    change(config)
    (official_folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LewmError) as error:  # ... the changed one is refused, naming the field
        import_official(official_folder, tmp_path / "run", frameskip=5)
    message = str(error.value)
    assert field in message and "config.json" in message and "\n" not in message, message
    assert not (tmp_path / "run").exists()


def test_unknown_section_and_non_object_configs(official_folder: Path) -> None:
    config = _load_json(official_folder / "config.json")
    with pytest.raises(LewmError, match="'model' is not a section"):
        read_official_config({**config, "model": {}})
    with pytest.raises(LewmError, match="expected a JSON object"):
        read_official_config([config])
    with pytest.raises(LewmError, match="'projector' must be an object"):
        read_official_config({key: value for key, value in config.items() if key != "projector"})


def _write_lewm_run(run_dir: Path, **model_fields) -> None:
    """A run holding an untrained model of the tiny preset's sizes, with fields overridden."""
    config = preset("tiny")
    config.model.action_dim = 2
    for name, value in model_fields.items():
        setattr(config.model, name, value)
    config.validate()
    stats = NormStats(mean={"action": np.zeros(2)}, std={"action": np.ones(2)})
    write_model_run(run_dir, LeWM(config.model), config, stats)


def test_export_refuses_an_encoder_that_is_not_a_named_vit(tmp_path: Path, capsys) -> None:
    from lewm.cli.main import run

    _write_lewm_run(tmp_path / "run")
    assert run(["export", str(tmp_path / "run"), "--out", str(tmp_path / "exported")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lewm export: error: "), err
    assert "model.encoder: width 32, depth 1, heads 2, mlp_dim 64 is not a named ViT size" in err
    assert not (tmp_path / "exported").exists()


@pytest.mark.parametrize(
    ("model_fields", "message"),
    [
        ({"embed_dim": 16, "action_hidden": 40}, "model.action_hidden = 40 is not a multiple of embed_dim 16"),
        ({"embed_dim": 16, "predictor": {"heads": 1, "head_dim": 16}},
         "model.predictor.heads = 1 with head_dim = embed_dim 16"),
    ],
)
def test_export_refuses_what_the_official_config_cannot_say(tmp_path: Path, model_fields: dict,
                                                            message: str) -> None:
    fields = dict(model_fields)
    encoder = preset("paper").model.encoder  # a ViT-Tiny, at 32 px to stay small
    encoder.image_size, encoder.patch_size = 32, 8
    predictor = preset("tiny").model.predictor
    for name, value in fields.pop("predictor", {}).items():
        setattr(predictor, name, value)
    _write_lewm_run(tmp_path / "run", encoder=encoder, predictor=predictor, **fields)
    with pytest.raises(LewmError, match=message):
        export_official(tmp_path / "run", tmp_path / "exported")
    assert not (tmp_path / "exported").exists()


def test_import_refuses_to_overwrite_a_run(official_folder: Path, tmp_path: Path) -> None:
    import_official(official_folder, tmp_path / "run", frameskip=5)
    before = (tmp_path / "run" / "checkpoints" / "last.pt").stat().st_mtime_ns
    with pytest.raises(LewmError, match="already holds a run"):
        import_official(official_folder, tmp_path / "run", frameskip=5)
    assert (tmp_path / "run" / "checkpoints" / "last.pt").stat().st_mtime_ns == before
