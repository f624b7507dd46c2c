"""Lambda search: bisection finds the peak of a unimodal criterion in 3 + 2 * rounds evaluations, and the command
trains, scores, records and resumes its trials."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lewm.cli.main import run
from lewm.errors import LewmError
from lewm.workflows.lambda_search import LambdaSearchConfig, bisect_maximum


@pytest.mark.parametrize("peak", [0.003, 0.09, 0.4])
def test_bisection_finds_the_peak_of_a_unimodal_criterion(peak: float) -> None:
    calls = []

    def score(weight: float) -> float:
        calls.append(weight)
        return -((math.log10(weight) - math.log10(peak)) ** 2)

    result = bisect_maximum(score, 1e-3, 10.0, rounds=5)
    assert len(calls) == len(set(calls)) == 3 + 2 * 5  # O(log n): each round halves the bracket for 2 trainings
    # the starting bracket spans 4 decades; after 5 rounds the best point is within half a final bracket width
    assert abs(math.log10(result["best"]) - math.log10(peak)) <= 4 / 2**6 + 1e-9
    lo, hi = result["bracket"]
    assert lo <= peak <= hi or math.isclose(result["best"], peak, rel_tol=0.2)
    assert result["best_score"] == max(t["score"] for t in result["trials"])


def test_bisection_follows_a_criterion_that_peaks_at_the_edge_and_ignores_nan() -> None:
    result = bisect_maximum(lambda w: w if w < 5 else float("nan"), 0.01, 10.0, rounds=3)
    # 10 scores NaN (a collapsed or failed trial): the best is the largest finite lambda tried
    assert result["best"] < 10.0 and result["best"] > 1.0
    assert len(result["trials"]) == 9


@pytest.mark.slow
def test_lambda_search_command_trains_scores_and_resumes(tworoom_run: tuple[Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = tworoom_run
    out, report = tmp_path / "search", tmp_path / "search.json"
    argv = ["lambda-search", "--data", str(data), "--out", str(out), "--json", str(report), "--rounds", "1",
            "--low", "0.001", "--high", "1", "--preset", "tiny", "--steps", "60", "--threads", "1"]
    assert run(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("trial ") == 5 and "chosen lambda" in printed
    result = json.loads(report.read_text())
    assert result["trainings"] == 5 and result["criterion"] == "probe"
    scores = {round(t["lambda"], 6): t["score"] for t in result["trials"]}
    assert set(scores) == {0.001, 0.031623, 1.0, 0.005623, 0.177828}
    assert all(-1.0 <= s <= 1.0 for s in scores.values())
    assert result["chosen_lambda"] == max(result["trials"], key=lambda t: t["score"])["lambda"]
    assert (out / "lambda_search.png").stat().st_size > 5_000
    for trial in result["trials"]:
        assert (Path(trial["run"]) / "trial.json").is_file()
        assert (Path(trial["run"]) / "checkpoints" / "last.pt").is_file()
    # a second call reads every trial back instead of training again
    stamps = {t["run"]: (Path(t["run"]) / "checkpoints" / "last.pt").stat().st_mtime_ns for t in result["trials"]}
    assert run(argv) == 0
    assert json.loads(report.read_text())["chosen_lambda"] == result["chosen_lambda"]
    assert stamps == {r: (Path(r) / "checkpoints" / "last.pt").stat().st_mtime_ns for r in stamps}


def test_lambda_search_rejects_bad_input_in_one_line(tworoom_run: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = tworoom_run
    base = ["lambda-search", "--data", str(data), "--out", str(tmp_path / "s"), "--preset", "tiny"]
    assert run([*base, "--low", "1", "--high", "0.1"]) == 2
    assert "need 0 < low < high" in capsys.readouterr().err
    assert run([*base, "--target", "velocity"]) == 2
    assert "no column 'velocity'" in capsys.readouterr().err
    assert run([*base, "--criterion", "success"]) == 2
    assert "needs --env" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


@pytest.mark.parametrize("episodes", [0, -3, 2.5, True])
def test_eval_episodes_must_be_a_positive_integer(episodes) -> None:
    with pytest.raises(LewmError, match=f"^lambda-search: eval_episodes = {episodes!r} is invalid: must be an "
                                        "integer >= 1$"):
        LambdaSearchConfig(eval_episodes=episodes).validate()
