"""Argument checks shared by the environments: every bad value becomes a one-line LewmError naming it."""

from __future__ import annotations

from typing import Any

import numpy as np

from lewm.config import check_field
from lewm.errors import LewmError


def positive_int(where: str, name: str, value: Any) -> int:
    """`value` as an int, or `WHERE: NAME = VALUE is invalid: must be an integer >= 1`: the one count check of
    lewm.envs (sizes, steps, episodes). A bool is refused although Python counts it as an int: `True` is no
    count, and a float is refused rather than truncated."""
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    check_field(is_int and value >= 1, name, value, "must be an integer >= 1", where)
    return int(value)


def check_env_arguments(env: str, image_size: Any, max_episode_steps: Any, render_mode: Any) -> tuple[int, int]:
    """Validate an environment's constructor arguments; returns (image_size, max_episode_steps) as ints."""
    image_size = positive_int(env, "image_size", image_size)
    max_episode_steps = positive_int(env, "max_episode_steps", max_episode_steps)
    if render_mode not in (None, "rgb_array"):
        raise LewmError(f"{env}: render_mode = {render_mode!r} is invalid: must be 'rgb_array' or None")
    return image_size, max_episode_steps


def reset_options(env: str, options: dict[str, Any] | None) -> tuple[Any, Any]:
    """(state, goal_state) imposed by `reset(options=...)`, each None when not given; unknown keys are refused."""
    options = dict(options or {})
    unknown = set(options) - {"state", "goal_state"}
    if unknown:
        raise LewmError(f"{env}: reset option {sorted(unknown)[0]!r} is unknown: use 'state' or 'goal_state'")
    return options.get("state"), options.get("goal_state")


def check_action(env: str, action: Any) -> np.ndarray:
    """A (2,) finite float64 action, or a LewmError naming the value."""
    try:
        array = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise LewmError(f"{env}: action = {action!r} is invalid: expected 2 numbers") from error
    if array.shape != (2,):
        raise LewmError(f"{env}: action has shape {tuple(array.shape)}, expected (2,)")
    if not np.isfinite(array).all():
        raise LewmError(f"{env}: action = {array.tolist()} is invalid: not finite")
    return array
