"""The evaluation protocol the demo, the report and lambda search run: the paper's, with their number of pairs."""

from __future__ import annotations

import dataclasses

import pytest

from lewm.evaluation import default_eval_config
from lewm.workflows.common import eval_protocol


@pytest.mark.parametrize(("env", "iterations"), [("two-room", 10), ("pusht", 30), ("Push-T", 30)])
def test_eval_protocol_is_the_papers_with_fewer_pairs(env: str, iterations: int) -> None:
    protocol = eval_protocol(env, 7)
    assert protocol.episodes == 7 and protocol.planner.iterations == iterations
    assert protocol == dataclasses.replace(default_eval_config(env), episodes=7)  # nothing else differs
    assert eval_protocol(env, 7).planner is not protocol.planner  # each call gets its own, free to change
