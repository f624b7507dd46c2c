"""lewm import / lewm export on the command line: the summary, the files, hub ids through the cache, and bad input
as one line on stderr with exit status 2."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lewm.cli.main import run
from lewm.model import LeWM
from lewm.official import official_state_dict, read_official_config

CONFIG = json.loads((Path(__file__).parents[1] / "official" / "configs" / "small.json").read_text())
"""A small official config (ViT-Tiny at 32 px, a 2-block predictor, action blocks of 10), shared with tests/official."""
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BATCHNORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder in the released format (weights.pt with the official names and shapes, config.json) holding
    CONFIG's model with random weights (read-only: tests that change files work on a copy)."""
    torch.manual_seed(0)
    model = LeWM(read_official_config(CONFIG, (5, 2)))
    folder = tmp_path_factory.mktemp("released") / "official"
    folder.mkdir()
    torch.save(official_state_dict(model), folder / "weights.pt")
    (folder / "config.json").write_text(json.dumps(CONFIG, indent=2))
    return folder


def _variant(released: Path, folder: Path, config=None, weights: bytes | None = None) -> Path:
    """A copy of `released` with config.json and/or weights.pt replaced."""
    shutil.copytree(released, folder)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if weights is not None:
        (folder / "weights.pt").write_bytes(weights)
    return folder


def _changed(section: str, **fields) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config[section].update(fields)
    return config


def _one_line_error(argv: list[str], capsys) -> str:
    """Run the CLI, which must fail with status 2 and exactly one line on stderr; return that line."""
    assert run(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"lewm {argv[0]}: error: "), lines[0]
    assert captured.out == ""
    return lines[0]


# -- 8. smoke: import, then export ------------------------------------------------------------------------


def test_import_prints_a_summary_and_warns_about_identity_statistics(released: Path, tmp_path: Path,
                                                                     capsys) -> None:
    out = tmp_path / "run"
    assert run(["import", str(released), "--out", str(out), "--env", "pusht"]) == 0
    captured = capsys.readouterr()
    weights = torch.load(released / "weights.pt")
    parameters = sum(t.numel() for key, t in weights.items() if not key.endswith(BATCHNORM_BUFFERS))
    assert parameters == 5_495_918
    summary = captured.out.splitlines()
    assert summary[0] == (f"imported {released}: 5.50M parameters, frameskip 5 x action size 2 (from --env pusht), "
                          "action statistics from identity")
    assert summary[1] == f"written to {out} (config.yaml, checkpoints/last.pt, import.json)"
    warnings = captured.err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning: no --data: action statistics are the identity")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "checkpoints/last.pt", "config.yaml", "import.json", "normalization.json"]

    exported = tmp_path / "exported"
    assert run(["export", str(out), "--out", str(exported)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"written to {exported} (weights.pt with transformers-4 ViT names, config.json, " \
                                   "lewm.json)"
    assert captured.err == ""
    assert sorted(p.name for p in exported.iterdir()) == ["config.json", "lewm.json", "weights.pt"]
    assert json.loads((exported / "config.json").read_text()) == CONFIG
    back = torch.load(exported / "weights.pt")
    assert list(back) == list(weights) and all(torch.equal(back[key], weights[key]) for key in weights)
    side = json.loads((exported / "lewm.json").read_text())
    assert (side["frameskip"], side["action_dim"], side["step"]) == (5, 2, 0)


# -- 6. bad input: one line, status 2, nothing written ---------------------------------------------------


def test_missing_folder(tmp_path: Path, capsys) -> None:
    line = _one_line_error(["import", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--frameskip", "5"],
                           capsys)
    assert f"{tmp_path / 'nowhere'}: no such folder" in line
    assert not (tmp_path / "run").exists()


def test_folder_without_weights(released: Path, tmp_path: Path, capsys) -> None:
    folder = _variant(released, tmp_path / "official")
    (folder / "weights.pt").unlink()
    line = _one_line_error(["import", str(folder), "--out", str(tmp_path / "run"), "--frameskip", "5"], capsys)
    assert f"{folder}: no weights.pt in this folder" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model": {}}, "'model' is not a section of the official LeWM config"),
        ([CONFIG], "config.json must hold a JSON object, got list"),
        ("not json", "cannot read config.json"),
    ],
)
def test_config_of_another_shape(released: Path, tmp_path: Path, capsys, config, message: str) -> None:
    folder = _variant(released, tmp_path / "official")
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    line = _one_line_error(["import", str(folder), "--out", str(tmp_path / "run"), "--frameskip", "5"], capsys)
    assert message in line and "config.json" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("config", "messages"),
    [
        (_changed("predictor", depth=3), ["tensor(s) the config needs are missing", "predictor.transformer.layers.2."]),
        (_changed("predictor", depth=1), ["tensor(s) the config has no place for", "predictor.transformer.layers.1."]),
        (_changed("predictor", mlp_dim=128), ["is (96, 48) in the weights, (128, 48) under the config"]),
    ],
    ids=["depth-3", "depth-1", "mlp_dim-128"],
)
def test_weights_that_do_not_fit_the_config(released: Path, tmp_path: Path, capsys, config: dict,
                                            messages: list[str]) -> None:
    folder = _variant(released, tmp_path / "official", config=config)
    line = _one_line_error(["import", str(folder), "--out", str(tmp_path / "run"), "--frameskip", "5"], capsys)
    assert f"{folder}/weights.pt: the weights do not fit config.json: " in line
    for message in messages:
        assert message in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (random.Random(0).randbytes(4096), "not a readable PyTorch state dict"),
        (random.Random(1).randbytes(4096), "not a readable PyTorch state dict"),
        (b"\x80\x02." + bytes(64), "not a readable PyTorch state dict"),
        (b"", "not a readable PyTorch state dict"),
        ("list", "expected a state dict (parameter name -> tensor), got list"),
    ],
    ids=["random-bytes", "random-bytes-2", "pickle-stop", "empty", "a-list"],
)
def test_corrupt_weights(released: Path, tmp_path: Path, capsys, content, message: str) -> None:
    folder = _variant(released, tmp_path / "official")
    if content == "list":
        torch.save([torch.zeros(2)], folder / "weights.pt")
    else:
        (folder / "weights.pt").write_bytes(content)
    line = _one_line_error(["import", str(folder), "--out", str(tmp_path / "run"), "--frameskip", "5"], capsys)
    assert f"{folder / 'weights.pt'}: {message}" in line
    assert not (tmp_path / "run").exists()


def test_export_of_a_missing_run(tmp_path: Path, capsys) -> None:
    line = _one_line_error(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "exported")], capsys)
    assert "run directory does not exist" in line
    assert not (tmp_path / "exported").exists()


@pytest.mark.parametrize("source", ["hf:onlyname", "hf:a/b/c", "hf:owner/name@", "hf:/name", "hf:a/b@v1@v2"])
def test_malformed_hub_id(tmp_path: Path, capsys, monkeypatch, source: str) -> None:
    import huggingface_hub

    def no_call(*args, **kwargs):
        raise AssertionError("a malformed id must not reach the hub")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_call)
    line = _one_line_error(["import", source, "--out", str(tmp_path / "run"), "--frameskip", "5"], capsys)
    assert f"{source}: a hub checkpoint is named hf:OWNER/NAME or hf:OWNER/NAME@REVISION" in line


def _http_error(cls, status: int):
    """A huggingface_hub HTTP error as the library raises it (its constructor reads the response's headers)."""
    return cls(f"{status} Client Error", response=SimpleNamespace(headers={}, request=None, status_code=status))


def _hub_errors():
    from huggingface_hub import errors

    return [
        pytest.param(lambda: errors.LocalEntryNotFoundError("offline"),
                     "hf:owner/name@v9: not in the Hugging Face cache and the hub cannot be reached", id="offline"),
        pytest.param(lambda: _http_error(errors.RepositoryNotFoundError, 404),
                     "hf:owner/name@v9: no such repository on the hub", id="no-repo"),
        pytest.param(lambda: _http_error(errors.RevisionNotFoundError, 404),
                     "hf:owner/name@v9: the repository has no revision 'v9'", id="no-revision"),
        pytest.param(lambda: errors.EntryNotFoundError("config.json"),
                     "hf:owner/name@v9: the repository lacks config.json or weights.pt", id="no-file"),
        pytest.param(lambda: _http_error(errors.HfHubHTTPError, 500),
                     "hf:owner/name@v9: the hub refused the download", id="server-error"),
    ]


@pytest.mark.parametrize(("make_error", "message"), _hub_errors())
def test_hub_errors_are_one_line(tmp_path: Path, capsys, monkeypatch, make_error, message: str) -> None:
    import huggingface_hub

    def failing(*args, **kwargs):
        raise make_error()

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing)
    line = _one_line_error(["import", "hf:owner/name@v9", "--out", str(tmp_path / "run"), "--frameskip", "5"],
                           capsys)
    assert message in line
    assert not (tmp_path / "run").exists()


def test_offline_hub_id_fails_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "hf_home").mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_ENDPOINT")}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"), OMP_NUM_THREADS="1")
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "lewm.cli.main", "import", "hf:quentinll/lewm-pusht", "--out",
                             str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lewm import: error: hf:quentinll/lewm-pusht: not in the Hugging Face cache and the "
                               "hub cannot be reached")
    assert result.stdout == "" and not out.exists()


# -- 7. a hub id through the cache -------------------------------------------------------------------------


def _fake_hub(monkeypatch, repository: Path, snapshots: Path) -> list[tuple[str, str, str | None]]:
    """Make huggingface_hub.hf_hub_download serve `repository`'s files from snapshots/<COMMIT>/, as the cache
    lays them out; returns the list of (repo_id, filename, revision) it is asked for."""
    import huggingface_hub
    from huggingface_hub import errors

    calls: list[tuple[str, str, str | None]] = []

    def download(repo_id: str, filename: str, *, revision: str | None = None, **kwargs) -> str:
        calls.append((repo_id, filename, revision))
        if not (repository / filename).is_file():
            raise errors.EntryNotFoundError(f"{filename} not found in {repo_id}")
        target = snapshots / COMMIT / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repository / filename, target)
        return str(target)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    return calls


def test_hub_id_resolves_through_the_cache(released: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    calls = _fake_hub(monkeypatch, released, tmp_path / "hub" / "snapshots")
    out = tmp_path / "run"
    assert run(["import", "hf:owner/name@v1", "--out", str(out), "--frameskip", "5"]) == 0
    assert capsys.readouterr().out.startswith("imported hf:owner/name@v1: 5.50M parameters, frameskip 5 x action "
                                              "size 2 (from --frameskip)")
    assert {filename for _, filename, _ in calls} == {"config.json", "weights.pt", "lewm.json"}
    assert all(repo == "owner/name" and revision == "v1" for repo, _, revision in calls), calls
    provenance = json.loads((out / "import.json").read_text())
    assert provenance["source"] == "hf:owner/name@v1"
    assert provenance["revision"] == COMMIT
    assert provenance["weights_sha256"] == hashlib.sha256((released / "weights.pt").read_bytes()).hexdigest()


def test_hub_repository_with_lewm_json_needs_no_flags(released: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    repository = _variant(released, tmp_path / "repository")
    stats = {"mean": [0.5, -0.25], "std": [2.0, 3.0]}
    (repository / "lewm.json").write_text(json.dumps({"frameskip": 5, "action_dim": 2, "action_stats": stats}))
    calls = _fake_hub(monkeypatch, repository, tmp_path / "hub" / "snapshots")
    out = tmp_path / "run"
    assert run(["import", "hf:owner/name", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "frameskip 5 x action size 2 (from lewm.json), action statistics from lewm.json" in captured.out
    assert captured.err == ""  # no identity-statistics warning
    assert all(revision is None for _, _, revision in calls)
    normalization = json.loads((out / "normalization.json").read_text())
    assert normalization == {"mean": {"action": stats["mean"]}, "std": {"action": stats["std"]}}
    assert json.loads((out / "import.json").read_text())["revision"] == COMMIT
