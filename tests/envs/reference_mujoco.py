"""Side-by-side comparison of lewm's MuJoCo environments with stable-worldmodel 0.1.1's reference environments.

Shared by `tests/envs/test_reacher_parity.py` and scripts that print the deviations, so the test and the report
measure the same thing. As in `tests/envs/reference.py`, the reference modules are loaded without running
`stable_worldmodel/__init__.py` (it imports torchvision and lance): stub package modules whose `__path__` points
at the installed folders stand in for the packages, so only the modules asked for (and what they import) run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")  # before dm_control or mujoco is imported: headless rendering

REFERENCE_VERSION = "0.1.1"


def reference_root() -> Path | None:
    """The installed `stable_worldmodel` folder, or None when the package is not installed."""
    if "stable_worldmodel" in sys.modules:  # already imported (for real, or stubbed by an earlier call)
        paths = getattr(sys.modules["stable_worldmodel"], "__path__", None)
    else:  # locate without importing: its __init__ needs torchvision and lance
        spec = importlib.util.find_spec("stable_worldmodel")
        paths = spec.submodule_search_locations if spec is not None else None
    return Path(list(paths)[0]) if paths else None


def load_reference_module(module: str, packages: tuple[str, ...], requires: tuple[str, ...] = ()) -> Any:
    """Import `module` of the installed reference through stub `packages` (their `__init__` files never run).

    `requires` names third-party modules the reference module needs (dm_control, ogbench ...); a missing one,
    like a missing stable_worldmodel, raises ImportError with the reason, so callers can skip.
    """
    root = reference_root()
    if root is None:
        raise ImportError("stable_worldmodel is not installed (pip install --no-deps stable-worldmodel==0.1.1)")
    for name in requires:
        if importlib.util.find_spec(name) is None:
            raise ImportError(f"{name} is not installed (pip install -e '.[mujoco]')")
    for name in ("stable_worldmodel", *packages):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = stub
    package = sys.modules["stable_worldmodel"]
    for sub in ("utils", "spaces"):  # `spaces` reaches `swm.utils` through the package attribute
        setattr(package, sub, importlib.import_module(f"stable_worldmodel.{sub}"))
    return importlib.import_module(module)


@dataclass
class Deviation:
    """Largest absolute differences seen over every compared step (values), and how often a flag disagreed."""

    values: dict[str, float] = field(default_factory=dict)
    mismatches: dict[str, int] = field(default_factory=dict)
    rollouts: int = 0
    steps: int = 0

    def update(self, name: str, value: float) -> None:
        self.values[name] = max(self.values.get(name, 0.0), float(value))

    def count(self, name: str, disagree: bool) -> None:
        self.mismatches[name] = self.mismatches.get(name, 0) + int(disagree)

    def report(self, label: str) -> str:
        """One line for `pytest -s` or a script: the counts, every largest deviation and the mismatches."""
        values = ", ".join(f"{name} {value:.3g}" for name, value in sorted(self.values.items()))
        return (f"{label}: {self.rollouts} rollouts, {self.steps} steps; largest deviation: {values}; "
                f"flag mismatches: {self.mismatches}")


# -- Reacher -------------------------------------------------------------------------------------------------

REACHER_PACKAGES = ("stable_worldmodel.envs", "stable_worldmodel.envs.dmcontrol",
                    "stable_worldmodel.envs.dmcontrol.custom_tasks")


def load_reacher_reference() -> type:
    """The reference's `ReacherDMControlWrapper` class (use it with task='qpos_match'); ImportError when
    stable_worldmodel or dm_control is missing."""
    module = load_reference_module("stable_worldmodel.envs.dmcontrol.reacher", REACHER_PACKAGES,
                                   requires=("dm_control", "mujoco"))
    return module.ReacherDMControlWrapper


def reacher_model_difference(reference: Any) -> float:
    """Largest absolute difference between any numeric array of lewm's reacher model and the reference's
    compiled model, except the target's position (dm_control draws it at random at each reset; the target is
    invisible). Sizes that differ count as infinite."""
    from lewm.envs import reacher

    mujoco = reacher.import_mujoco("reacher")
    ours = reacher.build_model()
    theirs = reference.env.physics.model.ptr
    target = mujoco.mj_name2id(ours, mujoco.mjtObj.mjOBJ_GEOM, "target")

    def without_target(name: str, array: np.ndarray) -> np.ndarray:
        if name == "geom_pos":
            return np.delete(array, target, axis=0)
        return array[..., 3:] if name in ("geom_aabb", "bvh_aabb") else array  # their centres follow the target

    return model_arrays_difference(ours, theirs, without_target)


def model_arrays_difference(ours: Any, theirs: Any, adjust: Any = None) -> float:
    """Largest absolute difference over every numeric array of two compiled MjModels (arrays whose shapes differ
    count as infinite); `adjust(name, array)` may drop what is meant to differ."""
    largest = 0.0
    for name in dir(ours):
        a, b = getattr(ours, name, None), getattr(theirs, name, None)
        if name.startswith("_") or not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
            continue
        if a.shape != b.shape:
            return float("inf")
        if not (a.size and np.issubdtype(a.dtype, np.number)):
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        if adjust is not None:
            a, b = adjust(name, a), adjust(name, b)
        largest = max(largest, float(np.abs(a - b).max(initial=0.0)))
    return largest


def _reacher_start(rng: np.random.Generator, kind: int) -> np.ndarray:
    """(4,) start: anywhere with a velocity, the wrist near (or pressed past) its limit moving towards it, or
    the shoulder several turns round (unwrapped) with a fast spin."""
    from lewm.envs.reacher import WRIST_LIMIT

    state = np.array([rng.uniform(-np.pi, np.pi), rng.uniform(-WRIST_LIMIT, WRIST_LIMIT), *rng.uniform(-4, 4, 2)])
    if kind == 1:
        side = rng.choice([-1.0, 1.0])
        state[1] = side * (WRIST_LIMIT - rng.uniform(-0.05, 0.1))  # up to 0.05 rad inside the soft limit
        state[3] = side * rng.uniform(0.0, 6.0)
    elif kind == 2:
        state[0] += rng.choice([-1, 1]) * 2 * np.pi * rng.integers(1, 4)
        state[2] = rng.uniform(-8, 8)
    return state


def _reacher_actions(rng: np.random.Generator, steps: int, kind: int) -> np.ndarray:
    """(steps, 2) actions: float32 uniform in [-1, 1], float32 full-scale bang-bang, float32 beyond [-1, 1]
    (clipped by lewm, clamped by MuJoCo's ctrlrange in the reference), or float64 Gaussian (dm_control's
    `-1 + (a + 1)` rounds most of those by an ulp; float32 values, and numpy's uniform float64 draws, which lie
    on a 2**-52 grid, pass through it exactly)."""
    if kind == 0:
        return rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    if kind == 1:
        return rng.choice([-1.0, 1.0], size=(steps, 2)).astype(np.float32)
    if kind == 2:
        return rng.normal(0, 1.5, size=(steps, 2)).astype(np.float32)
    return rng.normal(0, 0.6, size=(steps, 2))


def _goal_reached_mid_repeat(start: np.ndarray, actions: np.ndarray, first: int) -> np.ndarray | None:
    """(4,) goal that the first physics step of an environment step (index >= `first`) reaches while no
    earlier physics step does, so that environment step must stop half way (the reference's early stop); None
    when the rollout offers no such step. The goal lies 0.04 rad beyond the reached state along the motion of
    its fastest joint, so the states before it (moving towards it) are further than 0.05 rad away."""
    from lewm.envs.reacher import ReacherPhysics, is_success, to_control

    physics = ReacherPhysics()
    physics.set_state(start)
    visited = [physics.get_state()]  # every physics step's state
    for action in actions:
        physics.data.ctrl[:] = to_control(np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0))
        for _ in range(2):
            physics.mujoco.mj_step(physics.model, physics.data)
            visited.append(physics.get_state())
    visited = np.array(visited)  # 2 * steps + 1, 4
    for step in range(first, len(actions)):
        reached = visited[2 * step + 1]
        motion = reached[:2] - visited[2 * step, :2]
        joint = int(np.argmax(np.abs(motion)))
        goal = reached.copy()
        goal[joint] += 0.04 * np.sign(motion[joint])
        if is_success(reached, goal) and not is_success(visited[: 2 * step + 1], goal).any():
            return goal
    return None


def _reacher_sync(reference: Any, ours: Any, state: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Reset both to `state` with joint goal `goal` through their public reset options; lewm's target point
    is set to the one the reference drew (it only enters the observation's to_target). -> the reference's
    observation vector."""
    observation, _ = reference.reset(options={"state": state.copy(), "target_qpos": goal[:2].copy()})
    ours.reset(options={"state": state.copy(), "goal_state": goal.copy()})
    ours.target = reference.env.physics.named.data.geom_xpos["target", :2].copy()
    return observation


def _reacher_record(deviation: Deviation, reference: Any, ours: Any, observation: np.ndarray,
                    info: dict[str, Any]) -> None:
    physics = reference.env.physics
    state = ours.get_state()
    deviation.update("qpos", np.abs(state[:2] - physics.data.qpos).max())
    deviation.update("qvel", np.abs(state[2:] - physics.data.qvel).max())
    deviation.update("observation", np.abs(info["observation"] - observation).max())
    deviation.steps += 1


def reference_frame(reference: Any, size: int) -> np.ndarray:
    """The reference's `render()` at side `size`, drawn in its own GL context.

    dm_control remembers which of its contexts it made current and skips `eglMakeCurrent` while it believes its
    own still is; lewm's `mujoco.Renderer`s make theirs current behind its back, so without forgetting that
    memory dm_control would draw with its object names inside lewm's context (the frames could then agree for
    the wrong reason, and its frees would delete lewm's textures)."""
    from dm_control._render import base

    base._CURRENT_CONTEXT_FOR_THREAD.clear()
    base._CURRENT_THREAD_FOR_CONTEXT.clear()
    return reference.render(width=size, height=size)


_REFERENCES: dict[type, Any] = {}
"""One reference environment per class for the whole process: a collected dm_control environment frees its GL
objects under the same stale "current context" memory (see `reference_frame`), which could delete lewm's."""


def reacher_reference(reference_cls: type) -> Any:
    """The process's reference environment of `reference_cls` (qpos_match task), created on first use."""
    if reference_cls not in _REFERENCES:
        _REFERENCES[reference_cls] = reference_cls(task="qpos_match", seed=0)
    return _REFERENCES[reference_cls]


def _reacher_frames(deviation: Deviation, reference: Any, ours: Any, sizes: tuple[int, ...]) -> None:
    """Compare the current state's frames (lewm's `render_frames`, the reference's `render`) at each size:
    the largest channel difference and the number of pixels that differ at all."""
    from lewm.envs.reacher import render_frames

    for size in sizes:
        mine = render_frames(ours.get_state()[None], size)[0].astype(np.int16)
        theirs = np.asarray(reference_frame(reference, size), dtype=np.int16)
        difference = np.abs(mine - theirs)
        deviation.update(f"frame_{size}", difference.max())
        deviation.update(f"frame_{size}_pixels", np.count_nonzero(difference.max(axis=-1)))


def compare_reacher(reference_cls: type, rollouts: int, steps: tuple[int, int] = (30, 50), seed: int = 0,
                    frame_sizes: tuple[int, ...] = (64, 224), frame_every: int = 5) -> Deviation:
    """Step lewm's `ReacherEnv` and the reference side by side over varied rollouts.

    Each rollout resets both to the same start (with a velocity; near the wrist limit; several turns round) and
    joint goal; every second goal is first reached half way through an environment step, so that step must
    stop early. After a success (in either) both are re-placed at lewm's state with a new goal: the reference
    would otherwise start a new episode, lewm continues. Compared after every reset and step: joint angles and
    velocities, the success flags, the time each step advanced (flags "step_length"; "early_stops" counts lewm's
    half steps) and the 6-D observation; frames every `frame_every` steps at `frame_sizes`.
    """
    from lewm.envs.reacher import PHYSICS_STEP, ReacherEnv, sample_states

    rng = np.random.default_rng(seed)
    reference = reacher_reference(reference_cls)
    ours = ReacherEnv(image_size=8, max_episode_steps=10**6)
    deviation = Deviation()
    for rollout in range(rollouts):
        start = _reacher_start(rng, rollout % 3)
        length = int(rng.integers(steps[0], steps[1] + 1))
        actions = _reacher_actions(rng, length, (rollout // 3) % 4)
        goal = _goal_reached_mid_repeat(start, actions, int(rng.integers(0, length // 2))) if rollout % 2 else None
        goal = sample_states(rng, 1)[0] if goal is None else goal
        observation = _reacher_sync(reference, ours, start, goal)
        _reacher_record(deviation, reference, ours, observation, ours._info())
        for index, action in enumerate(actions):
            times = reference.env.physics.data.time, ours.physics.data.time
            observation, _, their_success, _, _ = reference.step(action)
            _, _, our_success, _, info = ours.step(action)
            _reacher_record(deviation, reference, ours, observation, info)
            lengths = reference.env.physics.data.time - times[0], ours.physics.data.time - times[1]
            deviation.count("success", our_success != their_success)
            deviation.count("step_length", not np.isclose(*lengths))
            deviation.count("successes", our_success)
            deviation.count("early_stops", our_success and lengths[1] < 1.5 * PHYSICS_STEP)
            if index % frame_every == 0:
                _reacher_frames(deviation, reference, ours, frame_sizes)
            if our_success or their_success:  # the reference would start a new episode on the next call
                _reacher_sync(reference, ours, ours.get_state(), sample_states(rng, 1)[0])
        deviation.rollouts += 1
    deviation.update("model", reacher_model_difference(reference))
    return deviation


# -- Cube ----------------------------------------------------------------------------------------------------

CUBE_PACKAGES = ("stable_worldmodel.envs", "stable_worldmodel.envs.ogbench")
CUBE_ORACLE_KEYS = ("proprio/effector_pos", "proprio/effector_yaw", "proprio/gripper_opening",
                    "proprio/gripper_contact", "privileged/block_0_pos", "privileged/block_0_yaw",
                    "privileged/target_block_pos", "privileged/target_block_yaw")
"""The info entries ogbench's CubeMarkovOracle reads."""


def load_cube_reference() -> type:
    """The reference's ogbench `CubeEnv` class (use env_type='single', mode='data_collection'); ImportError when
    stable_worldmodel, dm_control or ogbench is missing."""
    module = load_reference_module("stable_worldmodel.envs.ogbench.cube_env", CUBE_PACKAGES,
                                   requires=("dm_control", "mujoco", "ogbench"))
    return module.CubeEnv


def make_cube_reference(reference_cls: type, size: int) -> Any:
    """The reference as the data were collected: one cube, data-collection mode, the target not drawn."""
    return reference_cls(env_type="single", mode="data_collection", visualize_info=False, height=size, width=size)


def cube_model_difference(reference: Any) -> tuple[bool, float]:
    """(lewm's scene XML equals the reference's apart from the offscreen size, largest absolute difference over
    the numeric arrays of the two compiled models (sizes that differ count as infinite))."""
    from lewm.envs import cube_scene

    utils = importlib.import_module("ogbench.manipspace.mjcf_utils")
    theirs_xml = utils.to_string(reference._mjcf_model).splitlines()
    ours_xml = cube_scene.scene_xml()[0].splitlines()
    same = [line for line in theirs_xml if "offwidth" not in line] == [line for line in ours_xml
                                                                        if "<global " not in line]
    return same, model_arrays_difference(cube_scene.load_scene().model, reference._model)


def _cube_state(reference: Any) -> np.ndarray:
    return np.concatenate([reference._data.qpos, reference._data.qvel])


def _cube_reference_reset(reference: Any, **kwargs: Any) -> None:
    """`reference.reset(**kwargs)` with its own GL context current: each reset recompiles and closes its renderer,
    and `mujoco.Renderer.close` frees the GL resources of whatever context is current (a MuJoCo defect), which
    would otherwise be lewm's renderer's."""
    renderer = getattr(reference, "_renderer", None)
    if renderer is not None:
        renderer._gl_context.make_current()
    reference.reset(**kwargs)


def _cube_sync(reference: Any, ours: Any, seed: int) -> None:
    """Reset the reference (its draws come from the OS: the variation space is reseeded with None) and place
    lewm's environment in the same state with the same target."""
    _cube_reference_reset(reference, seed=seed)
    data = reference._data
    ours.reset(options={"state": _cube_state(reference), "goal_state": data.mocap_pos[0].copy()})
    ours.set_target(data.mocap_pos[0].copy(), data.mocap_quat[0].copy())


def _cube_record(deviation: Deviation, reference: Any, ours: Any, info: dict[str, Any], placed: bool = False) -> None:
    """Largest differences of the cube position, the joint angles (arm and gripper), the velocities, the 28-D
    observation and the oracle's inputs. Right after a state is imposed (`placed`) the gripper contact is kept
    apart: lewm computes it from the state, the reference's freshly compiled data reports 0."""
    from lewm.envs.cube import CUBE_QPOS

    theirs, mine = _cube_state(reference), ours.get_state()
    deviation.update("cube_position", np.abs(mine[CUBE_QPOS] - theirs[CUBE_QPOS]).max())
    deviation.update("joint_angles", np.abs(mine[:14] - theirs[:14]).max())
    deviation.update("velocities", np.abs(mine[21:] - theirs[21:]).max())
    observation = np.abs(info["observation"] - reference.compute_observation().astype(np.float32))  # 28
    their_info = reference.compute_ob_info()
    inputs = {key: np.abs(np.asarray(info[key]) - their_info[key]).max() for key in CUBE_ORACLE_KEYS}
    if placed:
        deviation.update("contact_after_set_state", inputs.pop("proprio/gripper_contact"))
        observation[18] = 0.0  # the contact entry
    deviation.update("observation", observation.max())
    deviation.update("oracle_inputs", max(inputs.values()))
    deviation.steps += 1


def _cube_frames(deviation: Deviation, reference: Any, ours: Any) -> None:
    """Our frame of the current state against (a) the reference's frame of the same kinematics (its data put
    through mj_forward, as a set_state or a reset leaves it) and (b) its raw frame after a step, which draws the
    bodies as the last substep began (2 ms earlier): the number of pixels that differ and the largest channel
    difference."""
    mujoco = importlib.import_module("mujoco")
    mine = ours.render().astype(np.int16)
    raw = np.asarray(reference.render(), dtype=np.int16)
    fresh = mujoco.MjData(reference._model)
    fresh.qpos[:], fresh.qvel[:] = reference._data.qpos, reference._data.qvel
    mujoco.mj_forward(reference._model, fresh)
    reference._renderer.update_scene(fresh, camera="front_pixels")
    same_kinematics = np.asarray(reference._renderer.render(), dtype=np.int16)
    deviation.update("frame", np.abs(mine - same_kinematics).max())
    deviation.update("frame_stale_pixels", np.count_nonzero(np.abs(mine - raw).max(axis=-1)) / raw[..., 0].size)


def _cube_actions(rng: np.random.Generator, steps: int) -> np.ndarray:
    """(steps, 5) float32 actions: uniform in [-1, 1] with stretches of a fully closing or opening gripper,
    and one in four beyond [-1, 1] (lewm clips; the reference is given the clipped action, see compare_cube)."""
    actions = rng.uniform(-1, 1, size=(steps, 5))
    actions[rng.uniform(size=steps) < 0.25] *= 1.8
    stretch = int(rng.integers(0, steps - 8))
    actions[stretch:stretch + 8, 4] = rng.choice([-1.0, 1.0])
    return actions.astype(np.float32)


def _cube_step(deviation: Deviation, reference: Any, ours: Any, action: np.ndarray) -> dict[str, Any]:
    """One step of both with `action`, compared; the reference gets it clipped to [-1, 1] (lewm clips it itself,
    the reference would scale it further). lewm's environment runs `advance` and `current_info`: `step` without
    its frame (a frame costs 0.03-0.15 s on a CPU; test_cube.py checks that `step` reproduces `advance`'s states
    and reports `current_info`'s success). -> the reference's info."""
    _, _, their_success, _, their_info = reference.step(np.clip(action, -1, 1))
    ours.advance(action)
    info = ours.current_info()
    _cube_record(deviation, reference, ours, info)
    deviation.count("success", info["success"] != their_success)
    deviation.count("successes", info["success"])
    return their_info


def _cube_oracle_steps(reference: Any, ours: Any | None, rng: np.random.Generator, steps: int,
                       deviation: Deviation) -> None:
    """Drive the reference (and lewm's environment too unless `ours` is None) with ogbench's oracle reading the
    reference's info, with the reference expert's noise, to reach a mid-episode state (cube grasped, lifted
    ...)."""
    markov = importlib.import_module("ogbench.manipspace.oracles.markov.cube_markov")
    oracle = markov.CubeMarkovOracle(env=reference, min_norm=0.4)
    info = reference.compute_ob_info()
    oracle.reset(None, info)
    for _ in range(steps):
        action = np.clip(oracle.select_action(None, info) + rng.normal(0, 0.05 * np.array([1, 1, 1, 3, 10])), -1, 1)
        action = action.astype(np.float32)
        if ours is None:
            info = reference.step(action)[-1]
        else:
            info = _cube_step(deviation, reference, ours, action)


def compare_cube(reference_cls: type, rollouts: int, steps: tuple[int, int] = (30, 50), seed: int = 0,
                 frame_size: int = 32, frames: bool = True) -> Deviation:
    """Step lewm's `CubeEnv` and the reference side by side.

    Rollout kinds: from a reset state with the target 2-6 cm from the cube; after 20-60 oracle steps taken by
    both (mid-episode: the cube grasped or carried); after oracle steps in the reference alone, whose state is
    then imposed on both (the reference's reset with a state, lewm's `set_state`). Then 30-50 random float32
    actions (some beyond [-1, 1]: the reference is given them clipped, lewm clips itself; stretches of a closing
    or opening gripper). Compared after every step: cube position, joint angles, velocities, the observation
    vector, the oracle's inputs and the success flags; with `frames`, the frames at each rollout's first state
    and last step (`frame_size` px, with shadows as the reference).
    """
    rng = np.random.default_rng(seed)
    reference = make_cube_reference(reference_cls, frame_size)
    try:
        return _compare_cube(reference, rng, rollouts, steps, seed, frame_size, frames)
    finally:
        _close_reference_renderer(reference)


def _close_reference_renderer(reference: Any) -> None:
    """Close the reference's renderer with its own GL context current (see `_cube_reference_reset`): dropped
    later by the garbage collector, it would free the GL resources of whichever renderer drew last, possibly
    one of lewm's cached ones, which later tests use."""
    renderer = getattr(reference, "_renderer", None)
    if renderer is not None:
        renderer._gl_context.make_current()
        renderer.close()
        reference._renderer = None


def _compare_cube(reference: Any, rng: np.random.Generator, rollouts: int, steps: tuple[int, int], seed: int,
                  frame_size: int, frames: bool) -> Deviation:
    from lewm.envs.cube import CubeEnv

    ours = CubeEnv(image_size=frame_size, max_episode_steps=10**6)
    deviation = Deviation()
    for rollout in range(rollouts):
        kind = rollout % 3
        _cube_sync(reference, ours, seed + rollout)
        if kind == 0:  # a target 2-6 cm from the cube: the success flag is decided near its threshold
            offset = rng.normal(size=2)
            target = _cube_state(reference)[14:17] + [*(offset / np.linalg.norm(offset) * rng.uniform(0.02, 0.06)), 0]
            reference.set_target_pos(0, target)
            ours.set_goal_state(target)
        elif kind == 1:
            _cube_oracle_steps(reference, ours, rng, int(rng.integers(20, 61)), deviation)
        elif kind == 2:
            _cube_oracle_steps(reference, None, rng, int(rng.integers(20, 61)), deviation)
            state, target = _cube_state(reference), reference._data.mocap_pos[0].copy()
            quaternion = reference._data.mocap_quat[0].copy()
            _cube_reference_reset(reference, options={"state": state})  # redraws the target: put it back
            reference.set_target_pos(0, target, quaternion)
            ours.set_state(state)
        _cube_record(deviation, reference, ours, ours.current_info(), placed=True)
        if frames:
            _cube_frames(deviation, reference, ours)
        for action in _cube_actions(rng, int(rng.integers(steps[0], steps[1] + 1))):
            _cube_step(deviation, reference, ours, action)
        if frames:
            _cube_frames(deviation, reference, ours)
        deviation.rollouts += 1
    same_xml, model = cube_model_difference(reference)
    deviation.update("model", model)
    deviation.count("xml_differs", not same_xml)
    return deviation
