"""lewm eval and the demo pipeline end to end on a tiny budget, and their one-line errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from einops import rearrange

from lewm.cli.main import run
from lewm.data import NormStats, write_episodes
from lewm.envs.collect import collect
from lewm.evaluation import EvalConfig, default_eval_config
from lewm.evaluation.protocol import executed_blocks, normalised_action_bounds, outside_box
from lewm.planning import CEMConfig
from lewm.training import train
from lewm.workflows.demo import DemoPlan, run_demo

REQUIRED = {"success_rate", "ci95", "random_success_rate", "random_ci95", "episodes", "plan_seconds_per_cycle",
            "trivial_pairs", "protocol"}
SMALL_CEM = ["--samples", "16", "--elites", "4", "--iterations", "2"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_config) -> tuple[Path, Path]:
    """A Two-Room file (24 episodes x 60 steps, 32 px) and a tiny model trained on it for 10 steps."""
    folder = tmp_path_factory.mktemp("tworoom")
    data = folder / "tworoom.h5"
    collect("two-room", "expert", 24, data, steps_per_episode=60, image_size=32, seed=0, progress=False)
    train(tiny_config(data, folder / "run", steps=10))
    return data, folder / "run"


def test_lewm_eval_writes_results_plot_and_video(tiny_run: tuple[Path, Path], capsys) -> None:
    data, run_dir = tiny_run
    args = ["eval", "--run", str(run_dir), "--env", "two-room", "--episodes", "6", "--videos", "2", *SMALL_CEM]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "vs random" in out and "s per batched CEM cycle" in out
    result = json.loads((run_dir / "eval" / "eval.json").read_text())
    assert REQUIRED <= set(result)
    assert result["episodes"] == 6 and len(result["per_episode"]) == 6
    assert 0 <= result["success_rate"] <= 1 and 0 <= result["random_success_rate"] <= 1
    assert result["ci95"][0] <= result["success_rate"] <= result["ci95"][1]
    assert result["protocol"]["goal_offset"] == 25 and result["protocol"]["budget"] == 50
    assert result["plan_seconds_per_cycle"] > 0
    assert result["clipped_action_share"] == 0.0  # CEM samples inside the action box
    assert "0% of executed actions clipped" in out
    # each goal is the state 25 steps after its start in the data's same episode
    from lewm.data import EpisodeFile

    with EpisodeFile(data) as file:
        states = file.dataset("state")
        for episode in result["per_episode"]:
            np.testing.assert_allclose(states[episode["row"] + 25], episode["goal"], atol=1e-4)
    # the final state of every episode passes the success test exactly when the episode succeeded (episodes stop
    # at success), for the planner and for the random policy
    from lewm.envs.two_room import is_success

    for episode in result["per_episode"]:
        assert bool(is_success(np.array(episode["final_state"]), np.array(episode["goal"]))) == episode["success"]
        assert bool(is_success(np.array(episode["random_final_state"]), np.array(episode["goal"]))) == \
            episode["random_success"]
    assert (run_dir / "eval" / "success.png").stat().st_size > 5_000
    assert (run_dir / "eval" / "episodes.gif").stat().st_size > 5_000


def test_eval_with_the_whole_plan_recorded(tiny_run: tuple[Path, Path], tmp_path: Path) -> None:
    """--rollout graph plans every episode each cycle (a recorded plan keeps its batch size) and uses the rows
    of the unfinished ones; on the CPU the recording runs directly."""
    from lewm.envs.two_room import is_success

    out = tmp_path / "graph_eval"
    args = ["eval", "--run", str(tiny_run[1]), "--env", "two-room", "--episodes", "5", "--videos", "0",
            "--rollout", "graph", "--out", str(out), *SMALL_CEM]
    assert run(args) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["protocol"]["rollout"] == "graph" and len(result["per_episode"]) == 5
    assert result["plan_cycles"] >= 1
    assert result["clipped_action_share"] == 0.0
    for episode in result["per_episode"]:
        assert bool(is_success(np.array(episode["final_state"]), np.array(episode["goal"]))) == episode["success"]


def test_single_elite_is_one_line(tmp_path: Path, capsys) -> None:
    """The std of one elite is NaN: rejected before any model is loaded."""
    assert run(["eval", "--run", str(tmp_path / "no_run"), "--env", "two-room", "--elites", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "planner.elites = 1" in err and ">= 2" in err and len(err.splitlines()) == 1
    assert run(["eval", "--run", str(tmp_path / "no_run"), "--env", "two-room", "--min-std", "-0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "planner.min_std = -0.5" in err and len(err.splitlines()) == 1


def test_action_box_in_normalised_units_and_executed_blocks() -> None:
    stats = NormStats(mean={"action": np.array([0.5, -0.2])}, std={"action": np.array([2.0, 0.5])})
    bounds = normalised_action_bounds(np.array([-1.0, -1.0], np.float32), np.array([1.0, 1.0], np.float32),
                                      stats, "action", frameskip=2)
    np.testing.assert_allclose(bounds.lower.numpy(), [-0.75, -1.6, -0.75, -1.6], rtol=1e-6)  # (f a) order
    np.testing.assert_allclose(bounds.upper.numpy(), [0.25, 2.4, 0.25, 2.4], rtol=1e-6)
    # the limits map back onto the box, up to float rounding that is not counted as clipping
    back = stats.denormalize("action", rearrange(torch.stack([bounds.lower, bounds.upper]).numpy(),
                                                 "b (f a) -> b f a", f=2))
    assert not outside_box(back, -1.0, 1.0).any()
    np.testing.assert_allclose(back[0], -1.0, atol=1e-6)
    assert list(outside_box(np.array([[1.0, 0.0], [1.5, 0.0], [0.2, -1.01]]), -1.0, 1.0)) == [False, True, True]
    executed = np.array([[[[1.0, -1.0], [0.5, 0.3]]]], np.float32)  # N=1 H=1 frameskip=2 A=2
    blocks = executed_blocks(executed, stats, "action")  # N H K
    np.testing.assert_allclose(blocks.numpy(), [[[0.25, -1.6, 0.0, 1.0]]], rtol=1e-6)


def test_history_holds_the_executed_actions(tiny_run: tuple[Path, Path], monkeypatch) -> None:
    """A plan outside the action box (here forced; an unbounded CEM made ~20% such actions on Two-Room) is
    clipped at execution, counted, and the model's action history gets the clipped actions, normalised."""
    from lewm.envs.two_room import sample_free_positions
    from lewm.evaluation import protocol
    from lewm.planning import CEMPlanner, PlanResult
    from lewm.runs import as_run

    loaded = as_run(tiny_run[1], "cpu")
    stats, frameskip = loaded.stats, loaded.model.config.frameskip
    planned_raw = np.tile(np.array([3.0, 0.5], np.float32), (frameskip, 1))  # frameskip A: x far outside
    planned = torch.from_numpy(rearrange(stats.normalize("action", planned_raw), "f a -> (f a)"))  # K
    seen: list[torch.Tensor | None] = []

    class OutOfBoxPlanner(CEMPlanner):
        def plan(self, rollout, emb_history, goal, past_blocks=None, generator=None, init_actions=None) -> PlanResult:
            seen.append(None if past_blocks is None else past_blocks.clone())
            actions = planned.expand(len(goal), self.config.horizon, len(planned)).clone()  # N H K
            return PlanResult(actions=actions, cost=torch.zeros(len(goal)))

    monkeypatch.setattr(protocol, "make_solver", lambda config, block_dim, bounds: OutOfBoxPlanner(config, block_dim))
    rng = np.random.default_rng(0)
    starts, goals = sample_free_positions(rng, 2), sample_free_positions(rng, 2)
    assert (np.linalg.norm(starts - goals, axis=1) > 60).all()  # out of reach in the budget
    pairs = protocol.Pairs(starts=starts.astype(np.float64), goals=goals.astype(np.float64), rows=np.arange(2))
    config = EvalConfig(episodes=2, budget=2 * frameskip, videos=0,
                        planner=CEMConfig(samples=4, elites=2, horizon=1, iterations=1))
    result = protocol.run_planner(loaded.model, stats, "two-room", pairs, 32, config, torch.device("cpu"))
    assert len(seen) == 2 and seen[1].shape == (2, 1, frameskip * 2)  # the second plan sees the first block
    expected = stats.normalize("action", np.tile(np.array([1.0, 0.5], np.float32), (frameskip, 1)))
    torch.testing.assert_close(seen[1][0, 0], torch.from_numpy(rearrange(expected, "f a -> (f a)")))
    assert not torch.allclose(seen[1][0, 0], planned)  # not the plan itself
    assert result.clipped_action_share == 1.0


def test_unknown_env_is_one_line(tiny_run: tuple[Path, Path], capsys) -> None:
    assert run(["eval", "--run", str(tiny_run[1]), "--env", "moon-base"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown environment 'moon-base'" in err and len(err.splitlines()) == 1


def test_run_without_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty_run").mkdir()
    assert run(["eval", "--run", str(tmp_path / "empty_run"), "--env", "two-room"]) == 2
    err = capsys.readouterr().err.strip()
    assert "empty_run: no checkpoint" in err and len(err.splitlines()) == 1


def test_action_dimension_mismatch_is_one_line(tiny_run: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    other = tmp_path / "three_actions.h5"
    rng = np.random.default_rng(0)
    write_episodes(other, [{
        "pixels": rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8),
        "action": rng.normal(size=(40, 3)).astype(np.float32),
        "state": rng.uniform(30, 190, (40, 2)).astype(np.float32),
    }])
    assert run(["eval", "--run", str(tiny_run[1]), "--env", "two-room", "--data", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "three_actions.h5" in err and "has 3 dimensions" in err and "action_dim 2" in err
    assert len(err.splitlines()) == 1


@pytest.mark.slow
def test_demo_pipeline_on_a_tiny_budget_then_reuses_its_stages(tmp_path: Path, tiny_config) -> None:
    out = tmp_path / "demo"
    plan = DemoPlan(episodes=16, steps_per_episode=60, image_size=32, eval_episodes=4)
    eval_config = EvalConfig(episodes=4, videos=1, planner=CEMConfig(samples=16, elites=4, iterations=2))
    messages: list[str] = []
    config = tiny_config(out / "tworoom_expert.h5", out / "run", steps=8)
    result = run_demo(out, plan, train_config=config, eval_config=eval_config, log=messages.append)
    assert REQUIRED <= set(result) and set(result["timings"]) == {"collect_minutes", "train_minutes",
                                                                   "eval_minutes"}
    for path in ("tworoom_expert.h5", "run/checkpoints/last.pt", "run/metrics.jsonl", "eval.json",
                 "eval/success.png", "eval/episodes.gif"):
        assert (out / path).exists(), path
    again = tiny_config(out / "tworoom_expert.h5", out / "run", steps=8)
    messages.clear()
    run_demo(out, plan, train_config=again, eval_config=eval_config, log=messages.append)
    assert messages[0].startswith("[1/3] reusing") and messages[1].startswith("[2/3] reusing")


def test_protocol_defaults_follow_the_paper_per_environment() -> None:
    from lewm.cli.eval import parse_eval_args

    assert default_eval_config("pusht").planner.iterations == 30  # paper: 30 on Push-T
    assert default_eval_config("Push-T").planner.iterations == 30
    assert default_eval_config("two-room").planner.iterations == 10  # 10 elsewhere
    for env in ("pusht", "two-room"):
        config = default_eval_config(env)
        assert (config.episodes, config.goal_offset, config.budget) == (50, 25, 50)
        assert (config.planner.samples, config.planner.elites, config.planner.horizon) == (300, 30, 5)
    assert parse_eval_args(["--run", "r", "--env", "pusht"]).protocol.planner.iterations == 30
    assert parse_eval_args(["--run", "r", "--env", "pusht", "--iterations", "7"]).protocol.planner.iterations == 7
    assert parse_eval_args(["--run", "r"]).protocol.planner.iterations == 10


def test_pusht_demo_pipeline_on_a_tiny_budget(tmp_path: Path, tiny_config) -> None:
    from lewm.workflows.demo import DEMO_PLANS, demo_train_config

    pusht_config = demo_train_config(tmp_path / "d.h5", tmp_path / "r", DEMO_PLANS["pusht"])
    assert pusht_config.model.history == 3 and pusht_config.keep_step_checkpoints
    assert DEMO_PLANS["pusht"].policy == "weak"  # the reference's collection policy
    assert demo_train_config(tmp_path / "d.h5", tmp_path / "r", DEMO_PLANS["two-room"]).model.history == 1
    out = tmp_path / "demo-pusht"
    plan = DemoPlan(episodes=6, policy="weak", steps_per_episode=40, image_size=32, eval_episodes=3, history=3)
    eval_config = EvalConfig(episodes=3, videos=1, planner=CEMConfig(samples=8, elites=2, iterations=1))
    messages: list[str] = []
    config = tiny_config(out / "pusht_weak.h5", out / "run", steps=4)
    result = run_demo(out, plan, train_config=config, eval_config=eval_config, log=messages.append, env="Push-T")
    assert messages[0] == f"[1/3] collecting 6 weak pusht episodes -> {out / 'pusht_weak.h5'}"
    assert result["protocol"]["env"] == "pusht" and result["episodes"] == 3
    assert len(result["per_episode"][0]["final_state"]) == 7  # Push-T states: agent, block pose, agent velocity
    assert (out / "eval" / "episodes.gif").exists()


def test_median_final_errors_per_environment() -> None:
    from lewm.evaluation import median_final_errors

    goals = np.array([[0.0, 0.0, 100.0, 100.0, 0.1, 0.0, 0.0]] * 3)
    states = goals.copy()
    states[:, 0] += [3.0, 4.0, 50.0]  # agent off by 3, 4, 50 -> median 4
    states[:, 2] += [0.0, 10.0, 10.0]  # block off by 0, 10, 10 -> median 10
    states[:, 4] = [0.1, 2 * np.pi + 0.1 - np.radians(30), 0.1 + np.radians(10)]  # wrapped: 0, 30, 10 degrees
    errors = median_final_errors("pusht", states, goals)
    assert errors["agent"] == pytest.approx(4.0) and errors["block"] == pytest.approx(10.0)
    assert errors["angle_deg"] == pytest.approx(10.0)
    assert set(median_final_errors("two-room", states[:, :2], goals[:, :2])) == {"agent"}


@pytest.mark.parametrize(("env", "iterations"), [("two-room", 10), ("pusht", 30), ("Push-T", 30)])
def test_default_eval_config_with_fewer_pairs_changes_nothing_else(env: str, iterations: int) -> None:
    """What the demo, the report and lambda search run: the paper's protocol on fewer start/goal pairs."""
    protocol = default_eval_config(env, 7)
    assert protocol.episodes == 7 and protocol.planner.iterations == iterations
    assert protocol == dataclasses.replace(default_eval_config(env), episodes=7)  # nothing else differs
    assert default_eval_config(env).episodes == 50  # the paper's
    assert default_eval_config(env, 7).planner is not protocol.planner  # each call gets its own, free to change
