"""OGBench Cube (single cube): a UR5e arm with a Robotiq gripper moves one 4 cm cube to a target position; it
steps exactly as stable-worldmodel 0.1.1's swm/OGBCube-v0 (`CubeEnv(env_type="single")`).

The scene, the controller and the observation keys live in `lewm.envs.cube_scene` (MuJoCo, dm-control and
ogbench are the optional `[mujoco]` dependencies, imported on first use through `lewm.envs.mujoco_backend`). An
action (5,) in [-1, 1] moves the end-effector target by up to 5 cm in x, y, z, turns it by up to 0.3 rad and
opens/closes the gripper; 25 physics substeps of 2 ms follow (differential IK, PD joint control). Success: the
cube within 0.04 m of the target (<=), tested after the substeps and not latched.

State (41,) float64: qpos (21) then qvel (20); the cube's xyz is `state[CUBE_QPOS]`. Proprio (19,): the proprio
part of the reference's state observation (joint angles and velocities, scaled effector position, cos/sin of its
yaw, scaled gripper opening, gripper contact); `info["observation"]` is the whole (28,) vector.

Reference behaviour reproduced (`tests/envs/test_cube_parity.py` steps both side by side): the relative action
starts from the pinch-site pose of the last substep's start (one substep stale, refreshed only by a reset or
`set_state`), so a step's effector observation is that stale pose too; setting a state writes qpos/qvel and runs
`mj_forward` (no physics step); setting a goal writes only the target. A reset draws as the reference's
data-collection mode (the mode its data come from; its "task" mode cycles through five fixed tasks instead):
cube xy uniform in [0.3, 0.55] x [-0.3, 0.3] at rest on the floor with a uniform yaw, target likewise, the pinch
site at (0.425, 0, 0.275) pointing down with a uniform yaw.

Departures (documented where they act): actions are clipped to [-1, 1] (the reference scales an out-of-range
action further); `set_state` clears the solver's warm start and computes contact forces, so what follows and
the info depend on the state alone; a reset reports the true success (the reference always says False); frames
are drawn from a state's own kinematics, so an environment frame equals `render_frames` of its state, as a
dataset frame does (after a step the reference draws the bodies as the last substep began, 2 ms earlier: frames
of the same kinematics are byte-identical, and the 2 ms shift changes up to ~15 % of a 32 px frame's pixels
after a full-speed step, measured in the parity test); the model is compiled once (the reference recompiles on
every reset because a colour check is inverted); `shadows=False` renders without shadows (different pixels,
about 3.5x faster on a CPU, where the 4096 px shadow map dominates at any image size). After success the
episode terminates, but the environment keeps stepping from the current state if asked.

Shapes: N batch of states, T time, S image side in pixels.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from lewm.envs.checks import check_env_arguments, positive_int, reset_options
from lewm.envs.cube_scene import (
    CUBE_QPOS,
    CUBE_QUAT,
    CUBE_RGBA,
    CUBE_Z,
    NQ,
    OBJECT_SAMPLING_BOUNDS,
    OBSERVATION_DIM,
    PIXEL_CAMERA,
    PROPRIO_DIM,
    STATE_DIM,
    SUBSTEPS,
    TARGET_SAMPLING_BOUNDS,
    apply_control,
    arm_start_qpos,
    load_scene,
    observation_info,
    observation_vector,
    z_rotation,
)
from lewm.envs.mujoco_backend import StateRenderer, cached_renderer, import_mujoco
from lewm.errors import LewmError

__all__ = ["CUBE_QPOS", "OBSERVATION_DIM", "PROPRIO_DIM", "STATE_DIM", "SUCCESS_DISTANCE", "CubeEnv",
           "cube_distance", "is_success", "render_frames"]

ENV = "cube"
ACTION_DIM = 5
SUCCESS_DISTANCE = 0.04
"""The cube counts as at its target within this distance (m), inclusive."""
POSITION_DIMS = (3, STATE_DIM)
"""A goal is a target xyz (3,) or a full state (41,)."""


def cube_distance(state: Any, goal: Any) -> Any:
    """Cube-to-target distance (m) for states (..., 41) or cube positions (..., 3) and goals of either kind."""
    cube, target = _cube_position("state", state), _cube_position("goal", goal)
    return np.linalg.norm(cube - target, axis=-1)


def is_success(state: Any, goal: Any) -> Any:
    """Cube within 0.04 m of the target (inclusive): (41,)/(3,) pairs -> bool, (N, 41) batches -> (N,) bools."""
    result = cube_distance(state, goal) <= SUCCESS_DISTANCE
    return bool(result) if np.ndim(result) == 0 else result


def _cube_position(name: str, value: Any) -> np.ndarray:
    """(..., 3) cube positions from states (..., 41) or positions (..., 3); a LewmError for any other shape."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0 or array.shape[-1] not in POSITION_DIMS:
        raise LewmError(f"cube: {name} has shape {tuple(array.shape)}, expected (..., 41) states or (..., 3) "
                        "cube positions")
    return array[..., CUBE_QPOS] if array.shape[-1] == STATE_DIM else array


def _check_vector(name: str, value: Any, sizes: tuple[int, ...]) -> np.ndarray:
    """`value` as a finite float64 vector of one of `sizes`, or a one-line LewmError naming it."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise LewmError(f"cube: {name} = {value!r} is invalid: expected {' or '.join(map(str, sizes))} numbers") \
            from error
    if array.ndim != 1 or array.size not in sizes:
        expected = " or ".join(f"({size},)" for size in sizes)
        raise LewmError(f"cube: {name} has shape {tuple(array.shape)}, expected {expected}")
    if not np.isfinite(array).all():
        bad = int(np.flatnonzero(~np.isfinite(array))[0])
        raise LewmError(f"cube: {name}[{bad}] = {array[bad]} is invalid: not finite")
    return array


def _check_state(name: str, value: Any) -> np.ndarray:
    """A (41,) state (qpos then qvel) whose cube quaternion is not zero, or a LewmError."""
    state = _check_vector(name, value, (STATE_DIM,))
    if np.linalg.norm(state[CUBE_QUAT]) < 1e-9:
        raise LewmError(f"cube: {name} has a zero cube quaternion (entries 17-20): not a rotation")
    return state


def sample_target(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(target xyz (3,), target quaternion (4,)): xy uniform over the reference's target bounds, on the floor,
    with a uniform yaw."""
    target = np.array([*rng.uniform(*TARGET_SAMPLING_BOUNDS), CUBE_Z])
    return target, z_rotation(rng.uniform(0.0, 2 * np.pi))


def sample_start(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(state (41,), target xyz (3,), target quaternion (4,)) drawn as the reference's data-collection reset:
    arm yaw, cube xy and yaw, then the target (`sample_target`); everything at rest."""
    scene = load_scene()
    state = np.zeros(STATE_DIM)
    state[:NQ] = scene.model.qpos0
    state[0:6] = arm_start_qpos(scene, rng.uniform(-np.pi, np.pi))
    state[CUBE_QPOS] = [*rng.uniform(*OBJECT_SAMPLING_BOUNDS), CUBE_Z]
    state[CUBE_QUAT] = z_rotation(rng.uniform(0.0, 2 * np.pi))
    return (state, *sample_target(rng))


class CubeEnv(gymnasium.Env):
    """OGBench single-cube pick-and-place as a gymnasium environment: observation = {pixels (S, S, 3) uint8 from
    the reference's front camera, proprio (19,) float32}; action (5,) in [-1, 1]; reward 1.0 on success else 0.0
    (the reference's); terminated on success, truncated after `max_episode_steps` steps.

    `set_state`, `set_goal_state` and `reset(options={"state": ..., "goal_state": ...})` replay dataset
    start/goal pairs; a goal is the cube's target xyz (3,) or a full state (41,).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, image_size: int = 224, max_episode_steps: int = 200, render_mode: str | None = "rgb_array",
                 shadows: bool = True):
        self.image_size, self.max_episode_steps = check_env_arguments(ENV, image_size, max_episode_steps,
                                                                      render_mode)
        if not isinstance(shadows, (bool, np.bool_)):
            raise LewmError(f"cube: shadows = {shadows!r} is invalid: must be True or False")
        self.render_mode = render_mode
        self.shadows = bool(shadows)
        size = self.image_size
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (size, size, 3), dtype=np.uint8),
            "proprio": spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), dtype=np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), dtype=np.float32)
        self._mujoco = import_mujoco(ENV)
        self.scene = load_scene()
        self.data = self._mujoco.MjData(self.scene.model)
        self._goal_state: np.ndarray | None = None
        self._steps = 0
        self._place(np.concatenate([self.scene.model.qpos0, np.zeros(STATE_DIM - NQ)]))  # the scene's rest pose

    # -- state API ---------------------------------------------------------------------------------------

    def _place(self, state: np.ndarray) -> None:
        """Write a checked (41,) state and recompute what derives from it without a physics step (mj_forward).

        Departures that keep the future a function of the state alone: the solver's warm start is cleared (the
        reference's reset with a state recompiles, which clears it too; its bare set_state keeps the previous
        one) and the contact forces are computed (the reference keeps the previous step's, which only the
        gripper-contact observation reads)."""
        mujoco = self._mujoco
        self.data.qpos[:] = state[:NQ]
        self.data.qvel[:] = state[NQ:]
        self.data.qacc_warmstart[:] = 0.0
        mujoco.mj_forward(self.scene.model, self.data)
        mujoco.mj_rnePostConstraint(self.scene.model, self.data)

    def set_state(self, state: Any) -> None:
        """Put the scene in a (41,) state (qpos then qvel); the pinch-site pose the next action starts from is
        refreshed, as in the reference."""
        self._place(_check_state("state", state))

    def set_goal_state(self, goal: Any) -> None:
        """Set the target: the cube's target xyz (3,), or a full (41,) state whose cube pose becomes the target
        (position and orientation) and whose frame `goal_observation` draws. The current state is left alone
        (only the target is written, as the reference's `set_target_pos`)."""
        goal = _check_vector("goal_state", goal, POSITION_DIMS)
        mocap = self.scene.target_mocap
        if goal.size == STATE_DIM:
            goal = _check_state("goal_state", goal)
            self.data.mocap_pos[mocap] = goal[CUBE_QPOS]
            self.data.mocap_quat[mocap] = goal[CUBE_QUAT]
            self._goal_state = goal.copy()
        else:
            self.data.mocap_pos[mocap] = goal
            self._goal_state = None

    def set_target(self, position: np.ndarray, quaternion: np.ndarray) -> None:
        """Move the target to `position` (3,) with orientation `quaternion` (4,, w x y z; only ogbench's oracle
        reads it), forgetting any full goal state."""
        self.data.mocap_pos[self.scene.target_mocap] = position
        self.data.mocap_quat[self.scene.target_mocap] = quaternion
        self._goal_state = None

    def get_state(self) -> np.ndarray:
        """(41,) float64 state: qpos then qvel."""
        return np.concatenate([self.data.qpos, self.data.qvel])

    def get_target(self) -> np.ndarray:
        """(3,) float64 target position of the cube."""
        return self.data.mocap_pos[self.scene.target_mocap].copy()

    def get_goal_state(self) -> np.ndarray:
        """(41,) float64: the goal state if a full one was given; otherwise the current state with the cube moved
        to the target (position and orientation), computed now."""
        if self._goal_state is not None:
            return self._goal_state.copy()
        state = self.get_state()
        state[CUBE_QPOS] = self.get_target()
        state[CUBE_QUAT] = self.data.mocap_quat[self.scene.target_mocap]
        return state

    @staticmethod
    def is_success(state: Any, goal: Any) -> Any:
        """Cube within 0.04 m of the target (inclusive); states (..., 41), goals (..., 41) or (..., 3)."""
        return is_success(state, goal)

    # -- gymnasium API -----------------------------------------------------------------------------------

    def current_info(self) -> dict[str, Any]:
        """The oracle's keys (`cube_scene.observation_info`) plus success, state, goal state, distance and the
        reference's (28,) observation vector."""
        info = observation_info(self.scene, self.data)
        state = self.get_state()
        distance = float(np.linalg.norm(state[CUBE_QPOS] - self.get_target()))
        info.update(success=distance <= SUCCESS_DISTANCE, state=state, goal_state=self.get_goal_state(),
                    cube_distance=distance, observation=observation_vector(info))
        return info

    def _observation(self, info: dict[str, Any]) -> dict[str, np.ndarray]:
        return {"pixels": self.render_state(info["state"]), "proprio": info["observation"][:PROPRIO_DIM].copy()}

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw start and target as the reference's data-collection reset (module docstring); options may impose
        either ("state": (41,), "goal_state": (3,) or (41,))."""
        super().reset(seed=seed)
        state, goal = reset_options(ENV, options)
        start = _check_state("state", state) if state is not None else None
        goal = _check_vector("goal_state", goal, POSITION_DIMS) if goal is not None else None
        info = self.start_episode(self.np_random, start, goal)
        return self._observation(info), info

    def start_episode(self, rng: np.random.Generator, state: np.ndarray | None = None,
                      goal: np.ndarray | None = None) -> dict[str, Any]:
        """`reset` without the frame (what the collector runs): draw a start and a target from `rng` (always, so
        the draws do not depend on what is imposed), then place the given or drawn ones; returns the info. A
        drawn target has a uniform yaw. The reported success is the true test (the reference reports False at a
        reset)."""
        drawn, target, quaternion = sample_start(rng)
        self._mujoco.mj_resetData(self.scene.model, self.data)
        self._place(drawn if state is None else _check_state("state", state))
        self.set_target(target, quaternion)
        if goal is not None:
            self.set_goal_state(goal)
        self._steps = 0
        return self.current_info()

    def advance(self, action: np.ndarray) -> None:
        """The physics of one step without observation or rendering (what `step` and the collector run): clip the
        action to [-1, 1], set the controls, 25 substeps, contact forces."""
        mujoco = self._mujoco
        apply_control(self.scene, self.data, np.clip(action, -1.0, 1.0))
        mujoco.mj_step(self.scene.model, self.data, nstep=SUBSTEPS)
        mujoco.mj_rnePostConstraint(self.scene.model, self.data)  # contact forces, for the gripper contact
        self._steps += 1

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """One control step. A float32 action keeps float32 arithmetic where the reference's does (its action
        unnormalisation); other dtypes run in float64. Out-of-range actions are clipped (a departure)."""
        array = _check_vector("action", action, (ACTION_DIM,))
        if np.asarray(action).dtype == np.float32:
            array = array.astype(np.float32)  # exact; keeps the reference's float32 arithmetic
        self.advance(array)
        info = self.current_info()
        terminated = bool(info["success"])
        truncated = self._steps >= self.max_episode_steps
        return self._observation(info), 1.0 if terminated else 0.0, terminated, truncated, info

    def render_state(self, state: Any) -> np.ndarray:
        """(S, S, 3) uint8 frame of a (41,) state, drawn on a separate MjData (the environment is untouched)."""
        return render_frames(_check_state("state", state)[None], self.image_size, self.shadows)[0]

    def render(self) -> np.ndarray:
        """(S, S, 3) uint8 frame of the current state: exactly `render_frames` of `get_state()`."""
        return self.render_state(self.get_state())

    def goal_observation(self) -> np.ndarray:
        """(S, S, 3) uint8 frame of `get_goal_state()`: the cube at its goal, the target itself not drawn (as the
        reference with visualize_info=False)."""
        return self.render_state(self.get_goal_state())


# -- rendering -----------------------------------------------------------------------------------------------


def _frame_renderer(size: int, shadows: bool) -> StateRenderer:
    """The process's renderer of `size` px frames (`lewm.envs.mujoco_backend`): a copy of the scene model (MjModel
    copies are deep: the shared physics model stays untouched) with, without shadows, no light casting one."""

    def build() -> StateRenderer:
        model = copy.copy(load_scene().model)
        if not shadows:
            model.light_castshadow[:] = 0
        return StateRenderer(ENV, model, size, PIXEL_CAMERA)

    return cached_renderer((ENV, size, shadows), build)


def render_frames(states: Any, image_size: int, shadows: bool = True,
                  cube_rgba: tuple[float, ...] | None = None) -> np.ndarray:
    """(T, 41) states -> (T, S, S, 3) uint8 frames from the reference's front camera, deterministic.

    Each state is written to a rendering-only MjData and `mj_forward` places the bodies. `cube_rgba` (4 numbers
    in [0, 1]) recolours the cube (a perturbation); one model and renderer per (size, shadows) are kept, since
    rendering dominates the cost of collecting data.
    """
    image_size = positive_int("cube render_frames", "image_size", image_size)
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != STATE_DIM:
        raise LewmError(f"cube render_frames: states have shape {tuple(states.shape)}, expected (T, 41)")
    if not np.isfinite(states).all():
        raise LewmError("cube render_frames: a state has a non-finite value")
    if cube_rgba is not None:
        rgba = np.asarray(cube_rgba, dtype=np.float64)
        if rgba.shape != (4,) or not ((rgba >= 0) & (rgba <= 1)).all():
            raise LewmError(f"cube render_frames: cube_rgba = {cube_rgba!r} is invalid: expected 4 numbers in [0, 1]")
        cube_rgba = tuple(float(value) for value in rgba)
    renderer = _frame_renderer(image_size, bool(shadows))
    renderer.model.geom_rgba[load_scene().cube_geom] = CUBE_RGBA if cube_rgba is None else cube_rgba
    frames = np.empty((len(states), image_size, image_size, 3), dtype=np.uint8)
    for index, state in enumerate(states):
        renderer.render(state[:NQ], state[NQ:], frames[index])
    return frames
