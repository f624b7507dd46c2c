"""lewm eval with every solver, the record of what it planned with, flags meant for another solver, and the warm
start when fewer blocks are executed than planned."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lewm.cli.eval import parse_eval_args
from lewm.cli.main import run
from lewm.evaluation import EvalConfig
from lewm.planning import SOLVER_OPTIONS, planner_config


@pytest.fixture(scope="module")
def tiny_run(tworoom_run: tuple[Path, Path]) -> Path:
    """The session's trained Two-Room run (tests/conftest.py), shared with the other planning tests."""
    return tworoom_run[1]


SMALL = {"cem": ["--elites", "4"], "icem": ["--elites", "4", "--keep-elites", "2", "--noise-beta", "1.5"],
         "mppi": ["--elites", "4", "--temperature", "0.2"], "gd": ["--lr", "0.05"], "ps": []}


@pytest.mark.parametrize("solver", ["icem", "mppi", "gd", "ps"])
def test_eval_plans_with_each_solver_and_records_it(tiny_run: Path, tmp_path: Path, solver: str, capsys) -> None:
    out = tmp_path / solver
    args = ["eval", "--run", str(tiny_run), "--env", "two-room", "--episodes", "3", "--videos", "0", "--out", str(out),
            "--solver", solver, "--samples", "8" if solver != "gd" else "2", "--iterations", "2", *SMALL[solver]]
    assert run(args) == 0
    assert f"per batched {solver.upper()} cycle" in capsys.readouterr().out
    protocol = json.loads((out / "eval.json").read_text())["protocol"]
    assert protocol["solver"] == solver and protocol["receding_horizon"] == 5
    assert set(protocol["planner"]) == {"solver", *SOLVER_OPTIONS[solver]}  # only what the solver reads
    assert protocol["planner"]["iterations"] == 2
    flags = dict(zip(SMALL[solver][::2], SMALL[solver][1::2], strict=True))
    for flag, value in flags.items():
        assert protocol["planner"][flag[2:].replace("-", "_")] == pytest.approx(float(value))


def test_solver_defaults_per_environment_and_solver() -> None:
    assert parse_eval_args(["--run", "r", "--solver", "gd"]).protocol.planner.samples == 1  # reference default
    assert parse_eval_args(["--run", "r", "--solver", "gd"]).protocol.planner.iterations == 10  # the protocol's
    assert parse_eval_args(["--run", "r", "--env", "pusht", "--solver", "icem"]).protocol.planner.iterations == 30
    assert parse_eval_args(["--run", "r", "--solver", "ps"]).protocol.planner.iterations == 1
    assert parse_eval_args(["--run", "r", "--solver", "ps", "--iterations", "3"]).protocol.planner.iterations == 3


@pytest.mark.parametrize(("args", "message"), [
    (["--temperature", "0.2"], "temperature = 0.2 is invalid: solver 'cem' does not read it"),
    (["--solver", "gd", "--elites", "5"], "elites = 5 is invalid: solver 'gd' does not read it"),
    (["--receding-horizon", "6"], "receding_horizon = 6 is invalid: must be in 1..horizon 5"),
    (["--solver", "gd", "--rollout", "graph"], "rollout = 'graph' is invalid: gradient descent needs autograd"),
    (["--solver", "adam"], "--solver"),
])
def test_bad_solver_flags_are_one_line(tiny_run: Path, args: list[str], message: str, capsys) -> None:
    assert run(["eval", "--run", str(tiny_run), "--env", "two-room", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_receding_horizon_executes_r_blocks_and_warm_starts_with_the_rest(tiny_run: Path, monkeypatch) -> None:
    """Plan 4 blocks, execute 1: every later plan of an episode starts from the 3 blocks its last plan left."""
    from lewm.envs.two_room import sample_free_positions
    from lewm.evaluation import protocol
    from lewm.planning import CEMPlanner, PlanResult
    from lewm.runs import as_run

    loaded = as_run(tiny_run, "cpu")
    calls: list[tuple[torch.Tensor | None, torch.Tensor]] = []

    class CountingPlanner(CEMPlanner):
        def plan(self, rollout, emb_history, goal, past_blocks=None, generator=None, init_actions=None):
            actions = torch.rand(len(goal), self.config.horizon, self.block_dim, generator=generator) * 0.2 - 0.1
            calls.append((None if init_actions is None else init_actions.clone(), actions))
            return PlanResult(actions=actions, cost=torch.zeros(len(goal)))

    monkeypatch.setattr(protocol, "make_solver", lambda config, block_dim, bounds: CountingPlanner(config, block_dim))
    rng = np.random.default_rng(1)
    starts, goals = sample_free_positions(rng, 2), sample_free_positions(rng, 2)
    assert (np.linalg.norm(starts - goals, axis=1) > 60).all()  # out of reach: every cycle plans both
    pairs = protocol.Pairs(starts=starts.astype(np.float64), goals=goals.astype(np.float64), rows=np.arange(2))
    frameskip = loaded.model.config.frameskip
    config = EvalConfig(episodes=2, budget=4 * frameskip, videos=0, receding_horizon=1,
                        planner=planner_config("cem", samples=4, elites=2, horizon=4, iterations=1))
    protocol.run_planner(loaded.model, loaded.stats, "two-room", pairs, 32, config, torch.device("cpu"))
    assert len(calls) == 4  # one block of frameskip steps per plan, four plans in the budget
    assert torch.equal(calls[0][0], torch.zeros(2, 3, calls[0][1].shape[2]))  # nothing to carry over at first
    for (_, previous), (warm, _) in zip(calls, calls[1:], strict=False):
        torch.testing.assert_close(warm, previous[:, 1:])
