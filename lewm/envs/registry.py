"""Environment names -> constructors: `make("two-room", image_size=64)`, `make("pusht")`, and the gymnasium ids
lewm/TwoRoom-v0 and lewm/PushT-v0.

`make` returns the bare environment (no gymnasium wrappers) so that its state-setting API (`set_state`,
`goal_observation` ...) is directly reachable; `gymnasium.make("lewm/TwoRoom-v0")` gives the wrapped one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium

from lewm.envs.pusht import PushTEnv
from lewm.envs.two_room import TwoRoomEnv
from lewm.errors import LewmError

ENV_NAMES: tuple[str, ...] = ("two-room", "pusht")
"""Canonical environment names, in the order error messages list them."""
_ALIASES = {"two-room": "two-room", "tworoom": "two-room", "two_room": "two-room", "pusht": "pusht",
            "push-t": "pusht", "push_t": "pusht"}
_CONSTRUCTORS: dict[str, Callable[..., gymnasium.Env]] = {"two-room": TwoRoomEnv, "pusht": PushTEnv}
GYMNASIUM_IDS = {"two-room": "lewm/TwoRoom-v0", "pusht": "lewm/PushT-v0"}


def canonical_name(name: str) -> str:
    """The canonical name of an environment ('TwoRoom' -> 'two-room'), or a LewmError listing the choices."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise LewmError(f"unknown environment {name!r}: choose one of {', '.join(ENV_NAMES)}")
    return _ALIASES[key]


def make(name: str, **kwargs: Any) -> gymnasium.Env:
    """Build an environment by name; keyword arguments go to its constructor (e.g. image_size=64)."""
    return _CONSTRUCTORS[canonical_name(name)](**kwargs)


def _register_with_gymnasium() -> None:
    """Make `gymnasium.make("lewm/TwoRoom-v0")` work; idempotent (re-imports do not warn)."""
    for name, env_id in GYMNASIUM_IDS.items():
        if env_id not in gymnasium.registry:
            entry = _CONSTRUCTORS[name]
            gymnasium.register(id=env_id, entry_point=f"{entry.__module__}:{entry.__name__}")


_register_with_gymnasium()
