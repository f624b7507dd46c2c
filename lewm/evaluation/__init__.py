"""Evaluation under the paper's protocol, beside a random policy on the same start/goal pairs."""

from lewm.evaluation.evaluate import EvalSetup, eval_setup, evaluate, summary_lines
from lewm.evaluation.oracle import BatchedPushT, OracleRollout, pose_cost, run_oracle
from lewm.evaluation.protocol import (
    EvalConfig,
    default_eval_config,
    default_planner,
    draw_pairs,
    median_final_errors,
    receding_horizon,
    reset_envs,
    run_planner,
    run_random,
    wilson_interval,
)

__all__ = [
    "BatchedPushT", "EvalConfig", "EvalSetup", "OracleRollout", "default_eval_config", "default_planner",
    "draw_pairs", "eval_setup", "evaluate", "median_final_errors", "pose_cost", "receding_horizon", "reset_envs",
    "run_oracle", "run_planner", "run_random", "summary_lines", "wilson_interval",
]
