"""Planning in latent space: solvers behind one interface (CEM, iCEM, MPPI, gradient descent, predictive
sampling), their settings, costs and rollout adapters, and a sampling solver's whole plan recorded as one CUDA
graph."""

from lewm.planning.cem import CEMPlanner
from lewm.planning.config import (
    SOLVER_NAMES,
    SOLVER_OPTIONS,
    CEMConfig,
    PlannerConfig,
    planner_config,
    solver_defaults,
)
from lewm.planning.gd import GradientPlanner
from lewm.planning.graphed import GraphedPlanner
from lewm.planning.icem import ICEMPlanner, coloured_noise
from lewm.planning.mppi import MPPIPlanner, mppi_weights
from lewm.planning.predictive import PredictiveSamplingPlanner
from lewm.planning.registry import SOLVERS, make_solver
from lewm.planning.rollout import ActionBounds, PlainRollout, as_runner, final_embedding_cost
from lewm.planning.solver import PlanResult, SamplingSolver, Solver

__all__ = [
    "SOLVERS", "SOLVER_NAMES", "SOLVER_OPTIONS", "ActionBounds", "CEMConfig", "CEMPlanner", "GradientPlanner",
    "GraphedPlanner", "ICEMPlanner", "MPPIPlanner", "PlainRollout", "PlanResult", "PlannerConfig",
    "PredictiveSamplingPlanner", "SamplingSolver", "Solver", "as_runner", "coloured_noise", "final_embedding_cost",
    "make_solver", "mppi_weights", "planner_config", "solver_defaults",
]
