"""What the orchestrators share: the evaluation protocol they run, with fewer start/goal pairs than the paper's."""

from __future__ import annotations

from lewm.evaluation import EvalConfig, default_eval_config


def eval_protocol(env: str, episodes: int) -> EvalConfig:
    """The paper protocol for `env` (goal 25 steps ahead, budget 50, CEM as the paper sets it for that
    environment) on `episodes` start/goal pairs: the demo, the report and lambda search size their evaluations
    for a CPU, and only the number of pairs may differ from the paper."""
    protocol = default_eval_config(env)
    protocol.episodes = episodes
    return protocol
