"""One settings object for every solver, so `lewm eval --solver S --samples N ...` reads the same flags whatever
the solver; each solver reads only the fields `SOLVER_OPTIONS` lists for it.

Defaults are stable-worldmodel 0.1.1's (`solver/`), except where the paper's protocol sets them: horizon 5 and
10 iterations outside Push-T (`lewm.evaluation.default_eval_config`). `solver_defaults` gives the fields whose
reference default differs between solvers (gradient descent: 1 sample; predictive sampling: 1 round).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from lewm.config import check_field, check_positive_ints, is_number

SolverName = Literal["cem", "icem", "mppi", "gd", "ps"]

SOLVER_NAMES: tuple[str, ...] = ("cem", "icem", "mppi", "gd", "ps")
"""cem: cross-entropy method; icem: improved CEM (coloured noise, kept elites, momentum); mppi: model predictive
path integral; gd: gradient descent through the differentiable rollout; ps: predictive sampling."""

_COMMON = ("samples", "horizon", "iterations", "init_std")
SOLVER_OPTIONS: dict[str, tuple[str, ...]] = {
    "cem": (*_COMMON, "elites", "min_std"),
    "icem": (*_COMMON, "elites", "min_std", "noise_beta", "alpha", "keep_elites"),
    "mppi": (*_COMMON, "elites", "temperature"),
    "gd": (*_COMMON, "lr"),
    "ps": _COMMON,
}
"""The `PlannerConfig` fields (besides `solver`) each solver reads."""


@dataclass
class PlannerConfig:
    """Solver and its settings; defaults are the paper's CEM (300 samples, top 30, horizon 5, 30 iterations, std 1)."""

    solver: SolverName = "cem"
    """cem, icem (improved CEM), mppi, gd (gradient descent) or ps (predictive sampling)."""
    samples: int = 300
    """S: candidate action sequences per environment and iteration (sample 0 is the current mean or nominal
    plan); for gd, the sequences optimised side by side (the first starts at the mean, the others from noise)."""
    elites: int = 30
    """Lowest-cost candidates that make the next distribution (cem, icem) or that MPPI weighs (mppi)."""
    horizon: int = 5
    """H: action blocks per plan (each block is frameskip raw actions)."""
    iterations: int = 30
    """Refinement rounds: sampling rounds (cem, icem, mppi, ps) or gradient steps (gd). Paper: 30 on Push-T, 10
    elsewhere."""
    init_std: float = 1.0
    """Standard deviation of the sampling noise in normalised action units: the initial one (cem, icem), the fixed
    one (mppi, ps), or that of gd's extra starting points (the mean starts at 0 or the warm start)."""
    min_std: float = 0.0
    """Floor on the sampling std (cem, icem; 0 lets them converge fully)."""
    noise_beta: float = 2.0
    """iCEM: exponent of the coloured noise, power ~ 1/f^beta along the horizon (0 = white noise, as CEM)."""
    alpha: float = 0.1
    """iCEM: momentum, next = alpha * previous + (1 - alpha) * elites' (for mean and std)."""
    keep_elites: int = 5
    """iCEM: best elites of the previous iteration injected as candidates 1..keep_elites."""
    temperature: float = 0.5
    """MPPI: softmax temperature on the elites' costs (lower: closer to the best elite)."""
    lr: float = 1.0
    """gd: SGD learning rate on the action sequence."""

    def validate(self, prefix: str = "planner") -> None:
        """Every field in range; cross-field rules only for the fields `solver` reads."""
        check_field(self.solver in SOLVER_NAMES, f"{prefix}.solver", self.solver,
                    f"use one of {', '.join(SOLVER_NAMES)}")
        check_positive_ints(self, ("samples", "elites", "horizon", "iterations"), prefix)
        check_field(isinstance(self.keep_elites, int) and self.keep_elites >= 0, f"{prefix}.keep_elites",
                    self.keep_elites, "must be an integer >= 0")
        for name, may_be_zero in (("init_std", False), ("min_std", True), ("temperature", False), ("lr", False),
                                  ("noise_beta", True)):
            value = getattr(self, name)
            ok = is_number(value) and math.isfinite(value) and (value >= 0 if may_be_zero else value > 0)
            check_field(ok, f"{prefix}.{name}", value, f"must be a finite number {'>=' if may_be_zero else '>'} 0")
        check_field(is_number(self.alpha) and 0 <= self.alpha < 1, f"{prefix}.alpha", self.alpha, "must be in [0, 1)")
        if "elites" in SOLVER_OPTIONS[self.solver]:
            check_field(self.elites >= 2 or self.solver == "mppi", f"{prefix}.elites", self.elites,
                        "must be >= 2 (the std of a single elite is NaN)")
            check_field(self.elites <= self.samples, f"{prefix}.elites", self.elites,
                        f"must be <= samples {self.samples}")
        if self.solver == "icem":
            check_field(self.keep_elites <= min(self.elites, self.samples - 1), f"{prefix}.keep_elites",
                        self.keep_elites, f"must be <= elites {self.elites} and < samples {self.samples}")

    def settings(self) -> dict[str, Any]:
        """The solver's name and the fields it reads (what eval.json records)."""
        return {"solver": self.solver, **{name: getattr(self, name) for name in SOLVER_OPTIONS[self.solver]}}

    def unused_changes(self) -> list[str]:
        """Fields changed from their defaults that `solver` does not read (a flag given for another solver)."""
        default = PlannerConfig()
        return [field.name for field in dataclasses.fields(self)
                if field.name not in ("solver", *SOLVER_OPTIONS[self.solver])
                and getattr(self, field.name) != getattr(default, field.name)]


CEMConfig = PlannerConfig
"""The settings CEM reads are those of `PlannerConfig` with solver 'cem' (kept under its historical name)."""


def solver_defaults(solver: str) -> dict[str, Any]:
    """Fields whose stable-worldmodel default for `solver` differs from `PlannerConfig`'s."""
    return {"gd": {"samples": 1}, "ps": {"iterations": 1}}.get(solver, {})


def planner_config(solver: str = "cem", **overrides: Any) -> PlannerConfig:
    """A `PlannerConfig` for `solver` with that solver's reference defaults, then `overrides`."""
    config = PlannerConfig(solver=solver, **{**solver_defaults(solver), **overrides})  # type: ignore[arg-type]
    config.validate()
    return config

