"""Solvers by name: `make_solver(config, block_dim, cost, bounds)` builds the one `config.solver` names."""

from __future__ import annotations

from lewm.planning.cem import CEMPlanner
from lewm.planning.config import PlannerConfig
from lewm.planning.gd import GradientPlanner
from lewm.planning.icem import ICEMPlanner
from lewm.planning.mppi import MPPIPlanner
from lewm.planning.predictive import PredictiveSamplingPlanner
from lewm.planning.rollout import ActionBounds, CostFn, final_embedding_cost
from lewm.planning.solver import Solver

SOLVERS: dict[str, type[Solver]] = {
    solver.name: solver for solver in (CEMPlanner, ICEMPlanner, MPPIPlanner, GradientPlanner, PredictiveSamplingPlanner)
}


def make_solver(config: PlannerConfig, block_dim: int, cost: CostFn = final_embedding_cost,
                bounds: ActionBounds | None = None) -> Solver:
    """The solver `config.solver` names, with `config`'s settings (validated: bad values are named)."""
    config.validate()
    return SOLVERS[config.solver](config, block_dim, cost=cost, bounds=bounds)
