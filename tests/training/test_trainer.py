"""The trainer learns, prevents collapse with SIGReg, resumes exactly, and keeps its run directory sound."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from lewm.config import load_train_config
from lewm.errors import LewmError
from lewm.runs import load_checkpoint
from lewm.training import train
from lewm.training.metrics import read_metrics
from lewm.training.trainer import Trainer


def _train_rows(run: Path) -> list[dict]:
    return [row for row in read_metrics(run / "metrics.jsonl") if row["split"] == "train"]


@pytest.fixture(scope="module")
def lambda_runs(tiny_config, dots_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """The same 120-step tiny training with lambda = 0 and with the default lambda = 0.1."""
    runs = {}
    for weight in (0.0, 0.1):
        out = tmp_path_factory.mktemp(f"lambda{weight}") / "run"
        config = tiny_config(dots_file, out, steps=120)
        config.objective.sigreg_weight = weight
        train(config)
        runs[weight] = out
    return runs


@pytest.fixture(scope="module")
def pldm_run(tiny_config, dots_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same 120-step tiny training with the PLDM objective (inverse dynamics on, to train its head too)."""
    out = tmp_path_factory.mktemp("pldm") / "run"
    config = tiny_config(dots_file, out, steps=120)
    config.objective.kind = "pldm"
    config.objective.pldm.inverse_dynamics = 1.0
    train(config)
    return out


@pytest.mark.slow
def test_pldm_objective_also_prevents_collapse(lambda_runs: dict[float, Path], pldm_run: Path) -> None:
    rows = _train_rows(pldm_run)
    assert {"variance", "covariance", "time_similarity", "time_variance", "inverse_dynamics"} <= set(rows[-1])
    assert "sigreg" not in rows[-1]
    collapsed = _train_rows(lambda_runs[0.0])[-1]
    assert rows[-1]["embedding_std"] > 20 * collapsed["embedding_std"]
    # the std hinge is being satisfied (slowly: 16 clips cannot hold 32 decorrelated unit-std dimensions)
    assert rows[-1]["variance"] < 0.9 * rows[0]["variance"]
    assert rows[-1]["inverse_dynamics"] < rows[0]["inverse_dynamics"]
    checkpoint = load_checkpoint(pldm_run / "checkpoints" / "last.pt")
    assert any(key.startswith("inverse_dynamics.") for key in checkpoint["objective"])
    assert load_train_config(pldm_run / "config.yaml").objective.kind == "pldm"
    assert (pldm_run / "plots" / "loss.png").is_file()


@pytest.mark.slow
def test_training_lowers_the_prediction_loss(lambda_runs: dict[float, Path]) -> None:
    rows = _train_rows(lambda_runs[0.1])
    first, last = rows[:2], rows[-2:]
    mean = lambda rs, key: sum(r[key] for r in rs) / len(rs)  # noqa: E731
    assert mean(last, "pred_loss") < 0.7 * mean(first, "pred_loss")
    # relative to the embeddings' spread (which SIGReg keeps up) the error falls much further
    relative = lambda rs: mean(rs, "pred_loss") / mean(rs, "embedding_std") ** 2  # noqa: E731
    assert relative(last) < relative(first) / 3


@pytest.mark.slow
def test_sigreg_prevents_collapse(lambda_runs: dict[float, Path]) -> None:
    collapsed = _train_rows(lambda_runs[0.0])[-1]
    healthy = _train_rows(lambda_runs[0.1])[-1]
    # prediction alone drives every embedding to the same point ...
    assert collapsed["embedding_std"] < 0.05
    assert collapsed["pred_loss"] < 1e-3
    # ... while SIGReg keeps them spread out
    assert healthy["embedding_std"] > 0.3
    assert healthy["embedding_std"] > 20 * collapsed["embedding_std"]
    assert healthy["sigreg"] < collapsed["sigreg"]
    # the smallest per-dimension spread separates them too (the effective rank, being scale-free, does not:
    # the collapsed run's residual jitter is spread over more directions, 11.7 vs 5.7 here)
    assert healthy["embedding_std_min"] > 10 * collapsed["embedding_std_min"]


def test_run_directory_contents(lambda_runs: dict[float, Path], dots_file: Path) -> None:
    run = lambda_runs[0.1]
    config = load_train_config(run / "config.yaml")
    assert config.model.action_dim == 2 and config.steps == 120
    assert config.data_path == dots_file.resolve()
    assert (run / "plots" / "loss.png").stat().st_size > 10_000
    assert (run / "plots" / "diagnostics.png").stat().st_size > 10_000  # rank, std and straightness curves
    stats = json.loads((run / "normalization.json").read_text())
    assert set(stats["mean"]) >= {"action", "proprio", "state"}
    rows = read_metrics(run / "metrics.jsonl")
    assert {"train", "val"} <= {row["split"] for row in rows}
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(5, 121, 5))
    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 120
    assert not list((run / "checkpoints").glob("*.tmp"))


def test_resume_after_interruptions_matches_an_uninterrupted_run(tiny_config, dots_file: Path, tmp_path: Path) -> None:
    # 40 steps cross an epoch boundary (22 training episodes x 21 clips // 16 = 28 steps per epoch)
    straight = tiny_config(dots_file, tmp_path / "straight", steps=40)
    train(straight)

    interrupted = tmp_path / "interrupted"
    first = train(tiny_config(dots_file, interrupted, steps=40), stop_at_step=13)
    assert first.stopped_early and first.step == 13
    assert load_checkpoint(interrupted / "checkpoints" / "last.pt")["step"] == 13
    second = train(tiny_config(dots_file, interrupted, steps=40, resume=True), stop_at_step=31)
    assert second.step == 31
    third = train(tiny_config(dots_file, interrupted, steps=40, resume=True))
    assert third.step == 40 and not third.stopped_early

    expected = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(interrupted / "checkpoints" / "last.pt")
    for name, tensor in expected["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    steps = [row["step"] for row in _train_rows(interrupted)]
    assert steps == sorted(set(steps)) == list(range(5, 41, 5))  # no step logged twice


def test_batch_larger_than_the_data_is_explained(tiny_config, dots_file: Path, tmp_path: Path) -> None:
    config = tiny_config(dots_file, tmp_path / "run")
    config.optim.batch_size = 100_000
    with pytest.raises(LewmError, match="training clips, fewer than optim.batch_size = 100000"):
        train(config)
    assert not (tmp_path / "run").exists()  # more bad-data cases: test_bad_data.py


def test_sigterm_stops_at_a_step_boundary_with_a_checkpoint(tiny_config, dots_file: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    step_once = Trainer.train_step

    def step_then_sigterm(self: Trainer, clip: dict) -> tuple:
        terms = step_once(self, clip)
        if self.step == 7:
            os.kill(os.getpid(), signal.SIGTERM)  # as a cluster's scheduler would, in the middle of a run
        return terms

    monkeypatch.setattr(Trainer, "train_step", step_then_sigterm)
    handler_before = signal.getsignal(signal.SIGTERM)
    result = train(tiny_config(dots_file, tmp_path / "run", steps=40))
    assert result.stopped_early and result.step == 7
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 7
    assert "stopped at step 7/40; continue with --resume" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the process's own handler is back


def test_existing_run_is_not_overwritten(tiny_config, lambda_runs: dict[float, Path], dots_file: Path) -> None:
    run = lambda_runs[0.0]
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(LewmError, match="already holds a run.*--resume"):
        train(tiny_config(dots_file, run, steps=5))
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_without_checkpoint_is_explained(tiny_config, dots_file: Path, tmp_path: Path) -> None:
    with pytest.raises(LewmError, match="last.pt: nothing to resume"):
        train(tiny_config(dots_file, tmp_path / "fresh", resume=True))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_corrupt_checkpoint_is_named_and_left_alone(tiny_config, dots_file: Path, tmp_path: Path, damage: str) -> None:
    run = tmp_path / "run"
    train(tiny_config(dots_file, run, steps=5))
    last = run / "checkpoints" / "last.pt"
    if damage == "truncate":
        last.write_bytes(last.read_bytes()[:1000])
    elif damage == "garbage":
        last.write_bytes(b"not a checkpoint at all")
    else:
        torch.save({"weights": torch.zeros(3)}, last)
    before = last.read_bytes()
    with pytest.raises(LewmError, match=r"last\.pt: (corrupt or unreadable|not a lewm) checkpoint"):
        train(tiny_config(dots_file, run, steps=10, resume=True))
    assert last.read_bytes() == before


def test_resume_refuses_a_different_model(tiny_config, dots_file: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(tiny_config(dots_file, run, steps=5))
    config = tiny_config(dots_file, run, steps=10, resume=True)
    config.model.embed_dim = 48
    with pytest.raises(LewmError, match="model.embed_dim = 48 differs from the checkpoint's 32"):
        train(config)
