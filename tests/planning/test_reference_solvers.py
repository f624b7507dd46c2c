"""Our CEM, iCEM, MPPI and predictive sampling against stable-worldmodel 0.1.1's solvers, side by side: the same
seed gives the same noise, so on the same problem both make the same plan (to float rounding).

The reference modules are loaded without running `stable_worldmodel/__init__.py` or `solver/__init__.py` (they
pull torchvision, lance and every solver): empty packages stand in for both, so only the solver file, its
`utils`, `protocols` and `callbacks` run. The problem: the embedding is the running sum of the action blocks
from a start, the cost the squared distance of the last one to a goal. The reference clamps only iCEM's
candidates to the action box; ours clamp every solver's, so CEM, MPPI and predictive sampling are compared
unbounded and iCEM inside a box that binds.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium.spaces import Box

from lewm.planning import ActionBounds, make_solver, planner_config

ENVS, FRAMESKIP, ACTION_DIM, HORIZON, SEED = 3, 2, 2, 4, 11
BLOCK = FRAMESKIP * ACTION_DIM
REFERENCE = {"cem": ("cem", "CEMSolver"), "icem": ("icem", "ICEMSolver"), "mppi": ("mppi", "MPPISolver"),
             "ps": ("predictive_sampling", "PredictiveSamplingSolver")}


def _reference_solver_class(module: str, name: str) -> type:
    spec = importlib.util.find_spec("stable_worldmodel") if "stable_worldmodel" not in sys.modules else None
    root = Path(spec.submodule_search_locations[0]) if spec else Path(sys.modules["stable_worldmodel"].__path__[0])
    for package, folder in (("stable_worldmodel", root), ("stable_worldmodel.solver", root / "solver")):
        if package not in sys.modules:  # an empty package: its __init__ would import torchvision and lance
            stub = types.ModuleType(package)
            stub.__path__ = [str(folder)]
            sys.modules[package] = stub
    return getattr(importlib.import_module(f"stable_worldmodel.solver.{module}"), name)


class _RunningSum:
    """The reference's `Costable`: costs (B, S) of candidates (B, S, H, K) from the info dict's start and goal."""

    def get_cost(self, info: dict, candidates: torch.Tensor) -> torch.Tensor:
        last = info["start"] + candidates.sum(dim=2)  # B S K
        return ((last - info["goal"]) ** 2).sum(dim=-1)


def _problem() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(ENVS, BLOCK, generator=generator), 3 * torch.randn(ENVS, BLOCK, generator=generator)


@pytest.mark.parametrize("solver", ["cem", "icem", "mppi", "ps"])
def test_plan_equals_the_reference_solver_for_the_same_seed(solver: str) -> None:
    reference_class = _reference_solver_class(*REFERENCE[solver])
    start, goal = _problem()
    low = -0.6 if solver == "icem" else -np.inf  # the goals lie outside [-0.6, 0.6]: the box binds
    settings = {"samples": 64, "horizon": HORIZON, "iterations": 5 if solver != "ps" else 1}
    extra = {"cem": {"elites": 8}, "icem": {"elites": 8, "keep_elites": 3}, "mppi": {"elites": 8}}
    settings.update(extra.get(solver, {}))
    ours = make_solver(planner_config(solver, **settings), BLOCK,
                       bounds=ActionBounds(torch.full((BLOCK,), low), torch.full((BLOCK,), -low)))
    plan = ours.plan(lambda history, blocks, past: history[:, -1:] + blocks.cumsum(dim=1), start[:, None], goal,
                     generator=torch.Generator().manual_seed(SEED)).actions

    reference_settings = {"num_samples": 64, "seed": SEED, "batch_size": ENVS}
    if solver != "ps":
        reference_settings["n_steps"] = settings["iterations"]
    if solver in ("cem", "icem", "mppi"):
        reference_settings["topk"] = 8
    if solver == "icem":
        reference_settings["n_elite_keep"] = 3
    reference = reference_class(_RunningSum(), **reference_settings)
    space = Box(low, -low, shape=(ENVS, ACTION_DIM), dtype=np.float32)
    reference.configure(action_space=space, n_envs=ENVS,
                        config=types.SimpleNamespace(horizon=HORIZON, action_block=FRAMESKIP))
    expected = reference.solve({"start": start, "goal": goal})["actions"]
    torch.testing.assert_close(plan, expected, atol=1e-5, rtol=1e-5)
    assert (plan.abs() > 1e-3).any()  # a plan that moved, not two untouched zero means
