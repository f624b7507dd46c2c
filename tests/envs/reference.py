"""Side-by-side comparison of lewm's Two-Room and Push-T with stable-worldmodel 0.1.1's reference environments.

Shared by `tests/envs/test_reference_parity.py` and `scripts/env_parity.py`, so the test and the report measure
the same thing. The reference modules are loaded without running `stable_worldmodel/__init__.py` (it imports
torchvision and lance, which lewm does not need): stub package modules whose `__path__` points at the installed
folders stand in for `stable_worldmodel`, `stable_worldmodel.envs` and the two environment packages, so only
`spaces.py`, `utils.py`, `envs/utils.py` and the two `env.py` files are executed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lewm.envs import pusht, two_room

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # the reference imports pygame; never open a display
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

REFERENCE_VERSION = "0.1.1"
_STUBS = ("stable_worldmodel", "stable_worldmodel.envs", "stable_worldmodel.envs.pusht",
          "stable_worldmodel.envs.two_room")


def reference_root() -> Path | None:
    """The installed `stable_worldmodel` folder, or None when the package is not installed."""
    if "stable_worldmodel" in sys.modules:  # already imported (for real, or stubbed by an earlier call)
        paths = getattr(sys.modules["stable_worldmodel"], "__path__", None)
    else:  # locate without importing: its __init__ needs torchvision and lance
        spec = importlib.util.find_spec("stable_worldmodel")
        paths = spec.submodule_search_locations if spec is not None else None
    return Path(list(paths)[0]) if paths else None


def load_reference() -> tuple[Any, Any]:
    """(PushT class, TwoRoomEnv class) of the installed reference, imported through stub packages.

    Raises ImportError (with the reason) when stable_worldmodel or one of its environment dependencies is
    missing, so callers can skip.
    """
    root = reference_root()
    if root is None:
        raise ImportError("stable_worldmodel is not installed (pip install --no-deps stable-worldmodel==0.1.1)")
    for name in _STUBS:
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = module
    package = sys.modules["stable_worldmodel"]
    for sub in ("utils", "spaces"):  # `spaces` reaches `swm.utils` through the package attribute
        setattr(package, sub, importlib.import_module(f"stable_worldmodel.{sub}"))
    push_t = importlib.import_module("stable_worldmodel.envs.pusht.env").PushT
    room = importlib.import_module("stable_worldmodel.envs.two_room.env").TwoRoomEnv
    return push_t, room


@dataclass
class Deviation:
    """Largest absolute differences seen over every step of every rollout."""

    values: dict[str, float] = field(default_factory=dict)
    rollouts: int = 0
    steps: int = 0

    def update(self, name: str, value: float) -> None:
        self.values[name] = max(self.values.get(name, 0.0), float(value))


# -- Two-Room ------------------------------------------------------------------------------------------


def _two_room_start(rng: np.random.Generator, kind: int) -> np.ndarray:
    """A start position: near the wall faces, inside the door, at the door's edges, or anywhere free."""
    g = two_room.DEFAULT_GEOMETRY
    low, high = g.door_span
    if kind == 0:  # inside the door band, anywhere across the wall
        return np.array([rng.uniform(g.face_left - 3, g.face_right + 3), rng.uniform(low, high)])
    if kind == 1:  # against a wall face, near the door's edge
        x = rng.choice([g.stop_left, g.face_left, g.stop_right, g.face_right]) + rng.uniform(-4, 0.0)
        return np.array([x if x < g.wall_center_x else x + 4, rng.choice([low, high]) + rng.uniform(-6, 6)])
    return two_room.sample_free_positions(rng, 1)[0]


def _two_room_actions(rng: np.random.Generator, steps: int, start: np.ndarray) -> np.ndarray:
    """(steps, 2) float32 actions: uniform, full-scale corners, a push towards the wall, or beyond [-1, 1]."""
    kind = rng.integers(4)
    if kind == 0:
        actions = rng.uniform(-1, 1, size=(steps, 2))
    elif kind == 1:
        actions = rng.choice([-1.0, 0.0, 1.0], size=(steps, 2))
    elif kind == 2:  # towards the wall with vertical jitter: slides along the face and through the door
        towards = 1.0 if start[0] < two_room.DEFAULT_GEOMETRY.wall_center_x else -1.0
        actions = np.stack([np.full(steps, towards), rng.uniform(-1, 1, size=steps)], axis=-1)
    else:
        actions = rng.normal(0, 1.5, size=(steps, 2))  # both environments clamp to [-1, 1]
    return actions.astype(np.float32)


def compare_two_room(reference_cls: Any, rollouts: int, steps: int, seed: int = 0) -> Deviation:
    """Step lewm's `TwoRoomEnv` and the reference side by side from the same starts with the same actions."""
    rng = np.random.default_rng(seed)
    ours = two_room.TwoRoomEnv(image_size=8, max_episode_steps=10**6)
    reference = reference_cls()
    reference.reset(seed=seed)  # once: it renders (slow); the wall and door are not varied by a reset
    g = two_room.DEFAULT_GEOMETRY
    door = (float(reference.door_positions[0]), float(reference.door_sizes[0]))
    if (reference.num_doors, reference.wall_axis, reference.wall_thickness, door) != (
            1, 1, g.wall_x1 - g.wall_x0, (sum(g.door_center[1:]), 0.5 * (g.door_y1 - g.door_y0))):
        raise AssertionError(f"the reference's wall/door differ from lewm's geometry: door {door}")
    deviation = Deviation()
    for rollout in range(rollouts):
        start = _two_room_start(rng, rollout % 3).astype(np.float32)
        reference._set_state(start)
        ours.set_state(start)
        for action in _two_room_actions(rng, steps, start):
            reference.step(action)
            ours.step(action)
            expected = reference.agent_position.numpy().astype(np.float64)
            deviation.update("position", np.abs(ours._state - expected).max())
            deviation.steps += 1
        deviation.rollouts += 1
    return deviation


# -- Push-T --------------------------------------------------------------------------------------------


def _pusht_start(rng: np.random.Generator, kind: int) -> np.ndarray:
    """(7,) start state: reset-like, agent near a wall, agent next to the block, or with a velocity."""
    state = pusht.sample_states(rng, 1)[0]
    if kind == 1:  # agent near a wall, block near the same wall
        side = rng.integers(4)
        near = rng.uniform(22, 45)
        axis, value = side % 2, near if side < 2 else 512 - near
        state[axis] = value
        state[2 + axis] = np.clip(value + (1 if side < 2 else -1) * rng.uniform(60, 140), 100, 412)
        while pusht.distance_to_block(state[None, :2], state[None, 2:5])[0] < 16:
            state[1 - axis] = rng.uniform(50, 450)
    elif kind == 2:  # agent just outside the block, facing it
        angle = rng.uniform(0, 2 * np.pi)
        for radius in np.arange(40.0, 200.0, 2.0):
            agent = state[2:4] + radius * np.array([np.cos(angle), np.sin(angle)])
            if pusht.distance_to_block(agent[None], state[None, 2:5])[0] > 16:
                state[:2] = agent
                break
    elif kind == 3:  # an agent velocity, as in dataset states, and an unwrapped angle
        state[5:7] = rng.uniform(-150, 150, size=2)
        state[4] -= 2 * np.pi
    elif kind == 4:  # the agent overlapping the block: placing it pushes the block (cached contacts)
        inside = pusht.block_to_world(np.array([[rng.uniform(-50, 50), -8.0]]), state[2:5])[0]
        state[:2] = inside
    return state


def _pusht_actions(rng: np.random.Generator, steps: int, state: np.ndarray) -> np.ndarray:
    """(steps, 2) float32 actions: uniform, full-scale constant pushes, or full-scale pushes at the block."""
    kind = rng.integers(3)
    if kind == 0:
        return rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    if kind == 1:
        constant = rng.choice([-1.0, 1.0], size=2) * rng.uniform(0.5, 1.0, size=2)
        return np.tile(constant, (steps, 1)).astype(np.float32)
    to_block = state[2:4] - state[:2]
    direction = to_block / max(np.linalg.norm(to_block), 1e-9)
    noise = rng.normal(0, 0.3, size=(steps, 2))
    return np.clip(direction + noise, -1, 1).astype(np.float32)


def _pusht_pair(reference: Any, ours: pusht.PushTEnv, start: np.ndarray, goal: np.ndarray) -> None:
    """Reset both to the same start and goal through their public reset options."""
    reference.reset(seed=0, options={"state": start.copy(), "goal_state": goal.copy()})
    ours.reset(options={"state": start.copy(), "goal_state": goal.copy()})


def _pusht_record(deviation: Deviation, reference: Any, ours: pusht.PushTEnv) -> None:
    expected = np.asarray(reference._get_obs(), dtype=np.float64)
    state = ours.physics.get_state()
    deviation.update("agent", np.abs(state[:2] - expected[:2]).max())
    deviation.update("block", np.abs(state[2:4] - expected[2:4]).max())
    deviation.update("angle", abs(pusht.wrap_angle(state[4] - expected[4])))
    deviation.update("velocity", np.abs(state[5:7] - expected[5:7]).max())
    deviation.steps += 1


def compare_pusht(reference_cls: Any, rollouts: int, steps: tuple[int, int] = (40, 80), seed: int = 0) -> Deviation:
    """Step lewm's `PushTEnv` and the reference side by side over varied rollouts.

    Each rollout resets both to the same (start, goal) via `reset(options=...)`; one goal in four has the agent
    overlapping the block (its placement leaves contacts and a block velocity behind); halfway through, one
    rollout in three sets a new state mid-episode (`set_state` / the reference's `_set_state`, same space); one
    in six uses float64 actions. States are compared after the reset, after every step and every set_state.
    """
    rng = np.random.default_rng(seed)
    reference = reference_cls()
    ours = pusht.PushTEnv(image_size=8, max_episode_steps=10**6)
    deviation = Deviation()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gymnasium's "casting input x" from the reference's reset
        for rollout in range(rollouts):
            start = _pusht_start(rng, rollout % 5)
            goal = _pusht_start(rng, 4 if rollout % 4 == 3 else 0)  # one goal in four overlaps the block
            _pusht_pair(reference, ours, start, goal)
            _pusht_record(deviation, reference, ours)
            length = int(rng.integers(steps[0], steps[1] + 1))
            actions = _pusht_actions(rng, length, start)
            if rollout % 6 == 5:
                actions = actions.astype(np.float64)  # float64 actions: the reference's PD runs in float64
            for index, action in enumerate(actions):
                if rollout % 3 == 2 and index == length // 2:
                    new_state = _pusht_start(rng, int(rng.integers(5)))
                    reference._set_state(new_state.copy())
                    ours.set_state(new_state.copy())
                    _pusht_record(deviation, reference, ours)
                reference.step(action)
                ours.step(action)
                _pusht_record(deviation, reference, ours)
            deviation.rollouts += 1
    return deviation
