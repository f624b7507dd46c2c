"""The demo pipeline (collect -> train -> plan beside random) on Reacher and Cube at a tiny budget, and the
evaluation's per-environment error summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lewm.analysis.surprise import surprise
from lewm.evaluation import EvalConfig, median_final_errors
from lewm.planning import CEMConfig
from lewm.workflows.demo import DEMO_PLANS, DemoPlan, demo_train_config, run_demo

pytest.importorskip("mujoco", reason="the MuJoCo extra is not installed: pip install -e '.[mujoco]'")


@pytest.mark.slow
@pytest.mark.parametrize(("env", "state_dim", "options"), [("reacher", 4, {}), ("cube", 41, {"shadows": False})])
def test_demo_pipeline_on_a_tiny_budget(tmp_path: Path, tiny_config, env: str, state_dim: int,
                                        options: dict) -> None:
    out = tmp_path / env
    plan = DemoPlan(episodes=4, steps_per_episode=40, image_size=32, eval_episodes=3, history=3, noise_std=None,
                    **options)
    eval_config = EvalConfig(episodes=3, videos=1, planner=CEMConfig(samples=8, elites=2, iterations=1))
    messages: list[str] = []
    config = tiny_config(out / f"{env}_expert.h5", out / "run", steps=4)
    result = run_demo(out, plan, train_config=config, eval_config=eval_config, log=messages.append, env=env)
    assert messages[0] == f"[1/3] collecting 4 expert {env} episodes -> {out / f'{env}_expert.h5'}"
    assert result["protocol"]["env"] == env and result["episodes"] == 3
    assert result["protocol"]["env_options"] == options  # Cube is evaluated with the data's rendering
    assert len(result["per_episode"][0]["final_state"]) == state_dim
    assert 0.0 <= result["random_success_rate"] <= 1.0
    assert (out / "eval" / "episodes.gif").exists()
    voe = surprise(out / "run", env, episodes=4, frames=4, event=2, device="cpu", progress=False)
    for kind in ("teleport", "colour"):  # re-rendered with the data's options (Cube: no shadows), scored
        assert voe[kind]["n"] == 4 and np.isfinite(voe[kind]["mean_surprise"])
    assert voe["teleport"]["mean_surprise"] != voe["colour"]["mean_surprise"]


def test_demo_plans_for_the_mujoco_envs_follow_the_paper_where_the_cpu_allows() -> None:
    for env in ("reacher", "cube"):
        plan = DEMO_PLANS[env]
        assert plan.policy == "expert" and plan.history == 3 and plan.steps_per_episode == 200
        assert demo_train_config(Path("d.h5"), Path("r"), plan).model.history == 3
    assert DEMO_PLANS["cube"].shadows is False  # rendering with shadows is what a CPU cannot afford
    assert DEMO_PLANS["reacher"].shadows is None


def test_median_final_errors_of_reacher_and_cube() -> None:
    from lewm.envs.cube import CUBE_QPOS

    goals = np.zeros((3, 4))
    states = goals.copy()
    states[:, 0] = np.radians([1.0, 5.0, 40.0])  # worst joint 1, 5, 40 degrees
    states[:, 1] = np.radians([-2.0, 0.0, 0.0])  # ... 2 on the first pair
    assert median_final_errors("reacher", states, goals) == {"joint_deg": pytest.approx(5.0)}
    goals, states = np.zeros((3, 41)), np.zeros((3, 41))
    states[:, CUBE_QPOS.start] = [0.01, 0.03, 0.2]
    assert median_final_errors("cube", states, goals) == {"cube": pytest.approx(0.03)}
