"""Tuning LeWM's one loss weight, lambda, by bisection on a validation criterion (docs/reference.md section 2).

Success is unimodal in lambda on a log scale (it collapses when lambda is too large and plans poorly when it is
too small), so a bracketing bisection in log10(lambda) finds the peak in O(log n) trainings, where PLDM's six
coefficients need a grid. The bracket (left, middle, right) starts as (low, sqrt(low * high), high); each round
trains the two quarter points and keeps the half-width bracket centred on the best lambda seen, so `rounds`
rounds cost 3 + 2 * rounds trainings and end with a bracket 2^-(rounds+1) of the starting one (in log10).

Criteria: `probe` (Pearson r of a linear probe from frozen embeddings to a data column, held-out episodes: fast)
or `success` (planning success rate under the evaluation protocol: the real target, minutes per trial on a CPU).
Every trial is its own run directory (OUT/lambda_<value>/) with its score in trial.json, so an interrupted
search resumes where it stopped and a finished one is read back without training.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lewm.config import TrainConfig, check_field, check_positive_ints
from lewm.errors import LewmError
from lewm.utils.io import atomic_write_text
from lewm.utils.plotting import pyplot

_WHERE = "lambda-search"
"""Prefix of this command's error messages."""


@dataclass
class LambdaSearchConfig:
    """What is searched and how each trial is scored."""

    low: float = 0.01
    """Smallest lambda of the starting bracket."""
    high: float = 1.0
    """Largest lambda of the starting bracket (docs/reference.md section 2: Push-T collapses at 0.5)."""
    rounds: int = 2
    """Bisection rounds; trainings = 3 + 2 * rounds."""
    criterion: Literal["probe", "success"] = "probe"
    """'probe': linear-probe Pearson r of `target`; 'success': planning success rate on `env`."""
    target: str = "proprio"
    """Column probed by the 'probe' criterion (proprio, state[0:2], ...)."""
    env: str | None = None
    """Environment for the 'success' criterion."""
    eval_episodes: int = 20
    """Start/goal pairs per trial for the 'success' criterion."""
    device: str = "auto"
    """'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N': device for scoring (training uses the train
    config's device)."""

    def validate(self) -> None:
        if not (0.0 < self.low < self.high):
            raise LewmError(f"lambda-search: need 0 < low < high, got low = {self.low!r}, high = {self.high!r}")
        check_field(self.rounds >= 0, "rounds", self.rounds, "must be >= 0", where=_WHERE)
        check_field(self.criterion in ("probe", "success"), "criterion", self.criterion, "use probe or success",
                    where=_WHERE)
        if self.criterion == "success" and not self.env:
            raise LewmError("lambda-search: the success criterion needs --env (two-room, pusht, reacher, cube)")
        check_positive_ints(self, ("eval_episodes",), prefix="", where=_WHERE)


def bisect_maximum(score: Callable[[float], float], low: float, high: float, rounds: int,
                   on_trial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Maximise `score(lambda)` over [low, high] by bracketing bisection in log10(lambda).

    Returns {"best": lambda, "best_score", "trials": [{"lambda", "score", "round"}...], "bracket": [lo, hi]}.
    NaN scores count as the worst. Each lambda is scored once.
    """
    scores: dict[float, float] = {}
    trials: list[dict[str, Any]] = []

    def value(log_lambda: float, round_index: int) -> float:
        key = round(log_lambda, 9)
        if key not in scores:
            result = float(score(10.0**key))
            scores[key] = result if math.isfinite(result) else -math.inf
            trials.append({"lambda": 10.0**key, "score": result, "round": round_index})
            if on_trial is not None:
                on_trial(trials[-1])
        return scores[key]

    left, right = math.log10(low), math.log10(high)
    middle = (left + right) / 2
    for point in (left, middle, right):
        value(point, 0)
    for round_index in range(1, rounds + 1):
        quarter_left, quarter_right = (left + middle) / 2, (middle + right) / 2
        value(quarter_left, round_index)
        value(quarter_right, round_index)
        bracket = [left, quarter_left, middle, quarter_right, right]
        best = max(range(5), key=lambda i: value(bracket[i], round_index))
        centre = min(max(best, 1), 3)  # the best edge point keeps its half: the bracket cannot leave the range
        left, middle, right = bracket[centre - 1], bracket[centre], bracket[centre + 1]
    best_key = max(scores, key=lambda k: scores[k])
    return {"best": 10.0**best_key, "best_score": scores[best_key], "trials": trials,
            "bracket": [10.0**left, 10.0**right]}


def _trial_dir(out: Path, weight: float) -> Path:
    return out / f"lambda_{weight:.4g}"


def _score_run(run_dir: Path, config: LambdaSearchConfig) -> float:
    if config.criterion == "probe":
        from lewm.analysis.probe import ProbeConfig, probe

        result = probe(run_dir, [config.target], config=ProbeConfig(fit_mlp=False), device=config.device)
        return float(result[config.target]["linear"]["r"])
    from lewm.evaluation import default_eval_config, evaluate

    result = evaluate(run_dir, config.env, config=default_eval_config(config.env, config.eval_episodes),
                      device=config.device)
    return float(result["success_rate"])


def _check_criterion_inputs(base: TrainConfig, config: LambdaSearchConfig) -> None:
    """Fail before the first training when the criterion cannot be computed on this data."""
    from lewm.analysis.probe import parse_target
    from lewm.data import EpisodeFile
    from lewm.envs import make

    if base.data_path is None:
        raise LewmError("lambda-search: --data FILE.h5 is required")
    if config.criterion == "probe":
        column, _ = parse_target(config.target)
        with EpisodeFile(base.data_path, pixels_key=base.data.pixels_key, action_key=base.data.action_key) as data:
            if column not in data.columns:
                raise LewmError(f"{base.data_path}: no column {column!r} for the probe criterion "
                                f"(columns: {', '.join(data.columns)}); pick one with --target")
    else:
        make(config.env)  # an unknown environment fails here


def lambda_search(base: TrainConfig, out: Path, config: LambdaSearchConfig,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train `base` (its objective forced to LeWM) at the lambdas bisection asks for, each in OUT/lambda_<value>,
    and return (and write to OUT/lambda_search.json and .png) the trials and the chosen lambda."""
    from lewm.training import train

    config.validate()
    _check_criterion_inputs(base, config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    total = 3 + 2 * config.rounds

    def score(weight: float) -> float:
        run_dir = _trial_dir(out, weight)
        record = run_dir / "trial.json"
        if record.is_file():
            return float(json.loads(record.read_text())["score"])
        trial = copy.deepcopy(base)
        trial.out = run_dir
        trial.objective.kind = "lewm"
        trial.objective.sigreg_weight = weight
        trial.resume = (run_dir / "checkpoints" / "last.pt").is_file()  # an interrupted trial continues
        start = time.perf_counter()
        train(trial)
        value = _score_run(run_dir, config)
        atomic_write_text(record, json.dumps({"lambda": weight, "score": value, "criterion": config.criterion,
                                              "seconds": time.perf_counter() - start}, indent=1))
        return value

    def report(trial: dict[str, Any]) -> None:
        log(f"trial {len(result_trials) + 1}/{total} (round {trial['round']}): lambda {trial['lambda']:.4g} -> "
            f"{config.criterion} {trial['score']:.4f}")
        result_trials.append(trial)

    result_trials: list[dict[str, Any]] = []
    result = bisect_maximum(score, config.low, config.high, config.rounds, on_trial=report)
    for trial in result["trials"]:
        trial["run"] = str(_trial_dir(out, trial["lambda"]))
    result.update({"chosen_lambda": result["best"], "criterion": config.criterion,
                   "target": config.target if config.criterion == "probe" else None,
                   "env": config.env, "trainings": len(result["trials"])})
    atomic_write_text(out / "lambda_search.json", json.dumps(result, indent=1))
    plot_search(result, out / "lambda_search.png")
    at_edge = result["best"] in (result["trials"][0]["lambda"], result["trials"][2]["lambda"])
    edge_note = "; it is at the edge of the range: widen --low/--high" if at_edge else ""
    log(f"chosen lambda {result['chosen_lambda']:.4g} ({config.criterion} {result['best_score']:.4f}) after "
        f"{result['trainings']} trainings{edge_note}")
    return result


def plot_search(result: dict[str, Any], path: Path) -> Path:
    """Criterion against lambda (log scale), the trials numbered in the order they ran."""
    plt = pyplot()

    trials = sorted(result["trials"], key=lambda t: t["lambda"])
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    axis.plot([t["lambda"] for t in trials], [t["score"] for t in trials], "o-")
    for index, trial in enumerate(result["trials"], start=1):
        axis.annotate(str(index), (trial["lambda"], trial["score"]), textcoords="offset points", xytext=(4, 4))
    axis.axvline(result["best"], color="tab:green", ls="--", lw=1, label=f"chosen {result['best']:.3g}")
    axis.set_xscale("log")
    axis.set_xlabel("lambda (SIGReg weight)")
    axis.set_ylabel(result.get("criterion", "score"))
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
