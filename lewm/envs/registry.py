"""Environment names -> constructors: `make("two-room", image_size=64)`, `make("pusht")`, `make("reacher")`,
`make("cube")`, and the gymnasium ids lewm/TwoRoom-v0, lewm/PushT-v0, lewm/Reacher-v0 and lewm/Cube-v0.

`make` returns the bare environment (no gymnasium wrappers) so that its state-setting API (`set_state`,
`goal_observation` ...) is directly reachable; `gymnasium.make("lewm/TwoRoom-v0")` gives the wrapped one.
Constructors are named by import path and imported on first use: Reacher and Cube need MuJoCo (the optional
`[mujoco]` extra), which `import lewm.envs` must not.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

from lewm.errors import LewmError

ENV_NAMES: tuple[str, ...] = ("two-room", "pusht", "reacher", "cube")
"""Canonical environment names, in the order error messages list them."""
MUJOCO_ENVS: frozenset[str] = frozenset({"reacher", "cube"})
"""Environments that run on MuJoCo (`pip install -e ".[mujoco]"`)."""
_ALIASES = {"two-room": "two-room", "tworoom": "two-room", "two_room": "two-room", "pusht": "pusht",
            "push-t": "pusht", "push_t": "pusht", "reacher": "reacher", "dmc-reacher": "reacher",
            "cube": "cube", "ogbench-cube": "cube", "cube-single": "cube"}
_CONSTRUCTORS = {"two-room": "lewm.envs.two_room:TwoRoomEnv", "pusht": "lewm.envs.pusht:PushTEnv",
                 "reacher": "lewm.envs.reacher:ReacherEnv", "cube": "lewm.envs.cube:CubeEnv"}
GYMNASIUM_IDS = {"two-room": "lewm/TwoRoom-v0", "pusht": "lewm/PushT-v0", "reacher": "lewm/Reacher-v0",
                 "cube": "lewm/Cube-v0"}
DATA_PREFIX = {"two-room": "tworoom", "pusht": "pusht", "reacher": "reacher", "cube": "cube"}
"""How data file names start (tworoom_expert.h5, cube_expert.h5 ...)."""


def canonical_name(name: str) -> str:
    """The canonical name of an environment ('TwoRoom' -> 'two-room'), or a LewmError listing the choices."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise LewmError(f"unknown environment {name!r}: choose one of {', '.join(ENV_NAMES)}")
    return _ALIASES[key]


def env_class(name: str) -> type[gymnasium.Env]:
    """The environment class of `name`, imported on first use."""
    module, _, attribute = _CONSTRUCTORS[canonical_name(name)].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make(name: str, **kwargs: Any) -> gymnasium.Env:
    """Build an environment by name; keyword arguments go to its constructor (e.g. image_size=64)."""
    return env_class(name)(**kwargs)


def _register_with_gymnasium() -> None:
    """Make `gymnasium.make("lewm/TwoRoom-v0")` work; idempotent (re-imports do not warn)."""
    for name, env_id in GYMNASIUM_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=_CONSTRUCTORS[name])


_register_with_gymnasium()
