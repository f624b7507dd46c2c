"""A trained LeWM plans: on the paper's Two-Room protocol it reaches goals clearly more often than a random policy
on the same start/goal pairs, and a model of the same size that was never trained does not.

The other evaluation tests train for 10 steps and check only the plumbing; this one uses the session's
`tworoom_run` (a tiny model trained 3000 steps on expert Two-Room data). Measured with this protocol over six
training seeds of that fixture: 79%, 76%, 49%, 78%, 78% and 78% against 11% for random actions (at 1500 steps the
same seeds gave 12-83%, which is why the fixture trains 3000); an untrained model of the same size reaches about 4%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lewm.evaluation import EvalConfig, default_eval_config, evaluate
from lewm.model import LeWM
from lewm.planning import CEMConfig
from lewm.runs import load_run, write_model_run

MIN_SUCCESS, MIN_LEAD_OVER_RANDOM = 0.3, 0.2
"""The bar: success rate at least this, and at least this much above the random policy's on the same pairs."""


def _protocol() -> EvalConfig:
    """The paper's protocol (goal 25 steps ahead, budget 50) on 100 pairs drawn from all 30 episodes (the fixture
    holds out only 3, too few distinct starts for a stable rate), CEM with 200 samples instead of 300 (46% instead
    of 47%, in 4 s instead of 7)."""
    protocol = default_eval_config("two-room", 100)
    protocol.split, protocol.videos = "all", 0
    protocol.planner = CEMConfig(samples=200, elites=20, iterations=10)
    return protocol


def _clears_the_bar(result: dict[str, Any]) -> bool:
    success, random = result["success_rate"], result["random_success_rate"]
    return success >= MIN_SUCCESS and success >= random + MIN_LEAD_OVER_RANDOM


@pytest.fixture(scope="module")
def trained_result(tworoom_run: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The protocol on the trained run, written outside it (the report tests read the run's own eval/)."""
    _, run_dir = tworoom_run
    return evaluate(run_dir, "two-room", config=_protocol(), device="cpu",
                    out_dir=tmp_path_factory.mktemp("trained_eval"))


def test_trained_model_plans_clearly_better_than_random(trained_result: dict[str, Any]) -> None:
    summary = {key: trained_result[key] for key in ("success_rate", "random_success_rate", "episodes")}
    assert trained_result["episodes"] == 100
    assert _clears_the_bar(trained_result), summary


def test_untrained_model_of_the_same_size_does_not_clear_the_bar(
        tworoom_run: tuple[Path, Path], trained_result: dict[str, Any], tmp_path: Path) -> None:
    """The same config and normalisation, fresh weights: the bar is one that training has to earn."""
    _, run_dir = tworoom_run
    trained = load_run(run_dir)
    torch.manual_seed(0)
    untrained_dir = tmp_path / "untrained"
    write_model_run(untrained_dir, LeWM(trained.config.model).eval(), trained.config, trained.stats)
    result = evaluate(untrained_dir, "two-room", config=_protocol(), device="cpu", out_dir=tmp_path / "eval")
    assert result["random_success_rate"] == trained_result["random_success_rate"]  # the same pairs
    assert not _clears_the_bar(result), (result["success_rate"], result["random_success_rate"])
