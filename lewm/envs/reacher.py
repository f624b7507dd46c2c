"""Reacher: DeepMind Control's two-link planar arm with the joint-matching task of stable-worldmodel 0.1.1
(ReacherDMControlWrapper(task="qpos_match")), stepped and drawn with plain MuJoCo.

Model: dm_control's `reacher.xml` (contacts disabled, 0.02 s physics step, two hinge joints with damping 0.01,
motors with gear 0.05 and ctrlrange [-1, 1]); the shoulder turns freely, the wrist is limited to +-160 degrees
(a soft limit: full torque pushes it about 0.08 rad past). Only what the reference changes in the XML is changed:
the target sphere is shrunk to 0.015 and made fully transparent (it never shows in a frame); the arm colour,
floor grid, and light the reference sets are the XML's own values already. Frames are drawn by the fixed
top-down camera 0 (dm_control's `physics.render` with the same model, scene and camera; `tests/envs/
test_reacher_parity.py` measures the difference).

State (4,): qpos (shoulder, wrist angles, rad) then qvel (rad/s); proprio = the state as float32.
Success: every joint within 0.05 rad of the goal's, on the plain difference (not wrapped: a shoulder a full
turn away is not a success though the frames agree) and strictly below the tolerance, as the reference tests it.

Reference quirks reproduced on purpose: an environment step applies the action for two physics steps but stops
after the first one that reaches the goal (the state is then only 0.02 s later); the action is turned into the
motor control as dm_control's action-scale wrapper does (`-1 + (a + 1)` in float64, which rounds some values
by an ulp); placing a state writes qpos and qvel and runs `mj_forward`, with no physics step.

Shapes: N batch of states, T time, S image side in pixels.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from lewm.envs.checks import check_action, check_env_arguments, positive_int, reset_options
from lewm.envs.mujoco_backend import StateRenderer, cached_renderer, import_mujoco
from lewm.errors import LewmError

ENV = "reacher"
STATE_DIM = 4
"""qpos (shoulder, wrist) then qvel."""
QPOS_DIM = 2
SUCCESS_TOLERANCE = 0.05
"""Per-joint angle tolerance (rad) of the success test, compared with a strict <."""
ACTION_REPEAT = 2
"""Physics steps per environment step (the reference's action repeat)."""
PHYSICS_STEP = 0.02
"""Seconds per physics step (reacher.xml's timestep)."""
WRIST_LIMIT = math.radians(160.0)
"""The wrist's joint range is [-WRIST_LIMIT, WRIST_LIMIT] (reacher.xml: range="-160 160" degrees)."""
TARGET_SIZE = 0.015
"""Radius the reference gives the (invisible) target sphere in its qpos_match task."""
TARGET_RADIUS = (0.05, 0.20)
"""dm_control draws the target point at a uniform angle and a radius uniform in this range."""
ARM_RGB = (0.7, 0.5, 0.3)
"""The arm's colour (the 'self' material of dm_control's materials.xml; the reference sets the same value)."""
CAMERA = 0
"""The fixed top-down camera ('fixed', 0.75 m above the arena) the reference renders from."""
OBSERVATION_DIM = 6
"""The reference's state observation: position (qpos, 2), to_target (target - fingertip xy, 2), velocity (2)."""
_OFFSCREEN_DEFAULT = (640, 480)
"""MuJoCo's default offscreen buffer (width, height): larger frames need a larger buffer."""


# -- model ---------------------------------------------------------------------------------------------------


def _replace_once(text: bytes, old: bytes, new: bytes, where: str) -> bytes:
    """`text` with the single occurrence of `old` replaced, or a LewmError when dm_control's XML has changed."""
    if text.count(old) != 1:
        raise LewmError(f"{ENV}: {where} of the installed dm_control differs from dm-control 1.0.50's: "
                        f"{old.decode()!r} not found once")
    return text.replace(old, new)


@lru_cache(maxsize=1)
def _model_source() -> tuple[str, dict[str, bytes]]:
    """(XML, assets) of dm_control's reacher with the reference's changes: the target sphere shrunk to 0.015
    and its material fully transparent. Edited as text so the compiled model equals the reference's own (which
    dm_control's MJCF exporter writes to a file and recompiles) without copying any of its fields by hand."""
    suite = import_mujoco(ENV, "dm_control.suite.reacher")
    xml, assets = suite.get_model_and_assets()
    xml = _replace_once(xml, b'type="sphere" size=".05"/>', b'type="sphere" size="%g"/>' % TARGET_SIZE,
                        "reacher.xml")
    assets = dict(assets)
    key = next(name for name in assets if name.endswith("materials.xml"))
    assets[key] = _replace_once(assets[key], b'<material name="target" rgba=".6 .3 .3 1"/>',
                                b'<material name="target" rgba=".6 .3 .3 0"/>', "common/materials.xml")
    return xml.decode(), assets


def build_model(image_size: int | None = None, arm_rgb: tuple[float, float, float] | None = None) -> Any:
    """A fresh `mujoco.MjModel` of the reference's reacher; `image_size` enlarges the offscreen buffer to fit
    frames of that side (MuJoCo refuses to render beyond it), `arm_rgb` recolours the arm ('self' material)."""
    mujoco = import_mujoco(ENV)
    xml, assets = _model_source()
    model = mujoco.MjModel.from_xml_string(xml, assets)
    if image_size is not None:
        model.vis.global_.offwidth = max(_OFFSCREEN_DEFAULT[0], image_size)
        model.vis.global_.offheight = max(_OFFSCREEN_DEFAULT[1], image_size)
    if arm_rgb is not None:
        material = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, "self")
        model.mat_rgba[material, :3] = arm_rgb
    return model


def to_control(action: np.ndarray) -> np.ndarray:
    """Motor controls of a clipped (2,) float64 action, computed as dm_control's action-scale wrapper maps
    [-1, 1] onto the ctrlrange [-1, 1]: `-1 + 1.0 * (a - (-1))`. Reference quirk: not the identity in floating
    point (0.3 becomes 0.30000000000000004; float32 actions pass through exactly), so the expression is kept
    for bit-identical steps (with the identity, float64 actions drift from the reference by about 1e-15)."""
    return -1.0 + 1.0 * (action + 1.0)


class ReacherPhysics:
    """One MuJoCo model and data: place states, step actions, read states and the fingertip."""

    def __init__(self) -> None:
        self.mujoco = import_mujoco(ENV)
        self.model = build_model()
        self.data = self.mujoco.MjData(self.model)
        self.finger = self.mujoco.mj_name2id(self.model, self.mujoco.mjtObj.mjOBJ_GEOM, "finger")
        self.mujoco.mj_forward(self.model, self.data)

    def set_state(self, state: np.ndarray) -> None:
        """Write a (4,) state's qpos and qvel and run `mj_forward` (no physics step), as the reference does."""
        self.data.qpos[:] = state[:QPOS_DIM]
        self.data.qvel[:] = state[QPOS_DIM:STATE_DIM]
        self.mujoco.mj_forward(self.model, self.data)

    def get_state(self) -> np.ndarray:
        """(4,) float64: qpos then qvel."""
        return np.concatenate([self.data.qpos, self.data.qvel])

    def step(self, action: np.ndarray, goal: np.ndarray | None = None) -> bool:
        """Apply a (2,) action (clipped to [-1, 1]) for `ACTION_REPEAT` physics steps; with a goal (>= 2 values),
        stop after the first physics step whose state passes the success test (reference quirk). Returns
        whether it stopped early. Without a goal it never stops early (data collection: no goal exists)."""
        self.data.ctrl[:] = to_control(np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0))
        for _ in range(ACTION_REPEAT):
            self.mujoco.mj_step(self.model, self.data)
            if goal is not None and is_success(self.data.qpos, goal):
                self.mujoco.mj_kinematics(self.model, self.data)
                return True
        # mj_step leaves positions computed for the state before its last integration; refresh them for the
        # fingertip (the reference's legacy step ends with mj_step1). mj_kinematics changes no dynamics state.
        self.mujoco.mj_kinematics(self.model, self.data)
        return False

    def finger_xy(self) -> np.ndarray:
        """(2,) fingertip position (world xy) of the current state."""
        return self.data.geom_xpos[self.finger, :2].copy()


# -- states, success, observations ---------------------------------------------------------------------------


def sample_states(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 4) states drawn as dm_control's reacher draws episode starts (each joint uniform over its range:
    shoulder [-pi, pi], wrist [-160, 160] degrees); velocity zero."""
    states = np.zeros((count, STATE_DIM))
    for row in range(count):
        states[row, 0] = rng.uniform(-np.pi, np.pi)
        states[row, 1] = rng.uniform(-WRIST_LIMIT, WRIST_LIMIT)
    return states


def sample_targets(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 2) target points drawn as dm_control's reacher places its (here invisible) target: angle uniform
    in [0, 2 pi), radius uniform in [0.05, 0.2], x = r sin(angle), y = r cos(angle)."""
    targets = np.zeros((count, 2))
    for row in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        radius = rng.uniform(*TARGET_RADIUS)
        targets[row] = radius * np.sin(angle), radius * np.cos(angle)
    return targets


def joint_errors(state: Any, goal: Any) -> Any:
    """Largest absolute joint-angle difference (rad, not wrapped) between states (..., >= 2) and goals."""
    state = np.asarray(state, dtype=np.float64)
    goal = np.asarray(goal, dtype=np.float64)
    return np.abs(state[..., :QPOS_DIM] - goal[..., :QPOS_DIM]).max(axis=-1)


def is_success(state: Any, goal: Any) -> Any:
    """Every joint strictly within 0.05 rad of the goal's (plain difference): (2,)/(4,) pairs -> bool,
    (N, 4) batches -> (N,) bool array."""
    result = joint_errors(state, goal) < SUCCESS_TOLERANCE
    return bool(result) if np.ndim(result) == 0 else result


@lru_cache(maxsize=1)
def _kinematics() -> ReacherPhysics:
    """A private model and data for fingertip positions of arbitrary states (never stepped)."""
    return ReacherPhysics()


def finger_positions(states: np.ndarray) -> np.ndarray:
    """(N, >= 2) states -> (N, 2) fingertip xy, from MuJoCo's forward kinematics (bit-equal to the stepped
    environment's)."""
    physics = _kinematics()
    positions = np.empty((len(states), 2))
    for row, state in enumerate(states):
        physics.data.qpos[:] = state[:QPOS_DIM]
        physics.mujoco.mj_kinematics(physics.model, physics.data)
        positions[row] = physics.data.geom_xpos[physics.finger, :2]
    return positions


def observation_vector(states: Any, target: Any) -> np.ndarray:
    """The reference's 6-D float32 state observation of (4,) or (N, 4) states for a target point (2,): qpos,
    target - fingertip xy (dm_control's `to_target`), qvel -> (6,) or (N, 6).

    The target is dm_control's invisible target sphere, drawn at random at every reset and unrelated to the
    joint goal of the qpos_match task (reference behaviour); lewm draws it the same way (`sample_targets`)."""
    states = np.asarray(states, dtype=np.float64)
    batch = np.atleast_2d(states)  # N 4
    to_target = np.asarray(target, dtype=np.float64)[None, :2] - finger_positions(batch)  # N 2
    vectors = np.concatenate([batch[:, :QPOS_DIM], to_target, batch[:, QPOS_DIM:STATE_DIM]], axis=1)
    return vectors.astype(np.float32) if states.ndim == 2 else vectors[0].astype(np.float32)


# -- rendering -----------------------------------------------------------------------------------------------


def _frame_renderer(size: int, arm_rgb: tuple[float, float, float] | None) -> StateRenderer:
    """The process's renderer of `size` px frames with this arm colour (`lewm.envs.mujoco_backend`)."""
    return cached_renderer((ENV, size, arm_rgb), lambda: StateRenderer(ENV, build_model(arm_rgb=arm_rgb), size, CAMERA))


def _check_rgb(arm_rgb: Any) -> tuple[float, float, float] | None:
    """`arm_rgb` as a hashable (r, g, b) tuple in [0, 1] (the renderer cache's key), None kept; or a LewmError."""
    if arm_rgb is None:
        return None
    try:
        rgb = np.asarray(arm_rgb, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise LewmError(f"{ENV}: arm_rgb = {arm_rgb!r} is invalid: expected 3 numbers in [0, 1]") from error
    if rgb.shape != (3,) or not np.isfinite(rgb).all() or (rgb < 0).any() or (rgb > 1).any():
        raise LewmError(f"{ENV}: arm_rgb = {arm_rgb!r} is invalid: expected 3 numbers in [0, 1]")
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]))


def render_frames(states: Any, image_size: int = 224, arm_rgb: Any = None) -> np.ndarray:
    """(T, 4) or (T, 2) states -> (T, S, S, 3) uint8 frames from the fixed top-down camera, at any side S.

    Only the joint angles (first two columns) show in a frame. `arm_rgb` recolours the arm (the 'self'
    material; the fingertip keeps its own colour), e.g. for a colour-change perturbation. States are drawn in
    float64 as given, so an environment's frame of a state equals the frame rendered here from that state."""
    size = positive_int(f"{ENV} render_frames", "image_size", image_size)
    rgb = _check_rgb(arm_rgb)
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] not in (QPOS_DIM, STATE_DIM):
        raise LewmError(f"{ENV} render_frames: states have shape {tuple(states.shape)}, expected (T, 4) or (T, 2)")
    if not np.isfinite(states).all():
        raise LewmError(f"{ENV} render_frames: a state has a non-finite value")
    renderer = _frame_renderer(size, rgb)
    frames = np.empty((len(states), size, size, 3), dtype=np.uint8)
    for index, state in enumerate(states):  # a (T, 2) state has no velocity part: drawn at rest
        renderer.render(state[:QPOS_DIM], state[QPOS_DIM:STATE_DIM] if len(state) >= STATE_DIM else 0.0,
                        frames[index])
    return frames


# -- gymnasium environment -----------------------------------------------------------------------------------


def check_state(name: str, value: Any, allow_angles: bool = False) -> np.ndarray:
    """A user-given state as float64 (4,) (velocity zero when 2 angles are given and `allow_angles`), or a
    one-line LewmError naming the value."""
    expected = "4 numbers (qpos, qvel)" + (" or 2 joint angles" if allow_angles else "")
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise LewmError(f"{ENV}: {name} = {value!r} is invalid: expected {expected}") from error
    sizes = (QPOS_DIM, STATE_DIM) if allow_angles else (STATE_DIM,)
    if array.size not in sizes or np.ndim(value) > 1:
        raise LewmError(f"{ENV}: {name} has shape {np.shape(value)}, expected {expected}")
    if not np.isfinite(array).all():
        raise LewmError(f"{ENV}: {name} = {array.tolist()} is invalid: not finite")
    full = np.zeros(STATE_DIM)
    full[: array.size] = array
    return full


class ReacherEnv(gymnasium.Env):
    """Reacher as a gymnasium environment: observation = {pixels (S, S, 3) uint8 from the top-down camera,
    proprio (4,) float32 joint angles and velocities}; action (2,) in [-1, 1] = the two motor torques
    (clipped; 0.05 N m at 1).

    A step repeats the action for two 0.02 s physics steps and stops after the first that reaches the goal
    (reference quirk). Reward is 1.0 on success, else 0.0 (the reference's qpos_match task ends the episode on
    success; it has no shaped reward for the joint goal); `terminated` = success, `truncated` = `max_episode_steps`
    steps taken. Unlike the reference (dm_control silently starts a new episode on the call after a success or
    after 1000 physics steps), lewm never resets by itself: stepping on after `terminated` continues from the
    current state, and the step limit is lewm's own `max_episode_steps`.

    `set_state`, `set_goal_state` and `reset(options={"state": ..., "goal_state": ...})` replay dataset
    start/goal pairs; info["observation"] is the reference's 6-D state observation, whose `to_target` part refers
    to dm_control's invisible target point, drawn at random at each reset as dm_control does (`sample_targets`).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, image_size: int = 224, max_episode_steps: int = 200, render_mode: str | None = "rgb_array"):
        self.image_size, self.max_episode_steps = check_env_arguments(ENV, image_size, max_episode_steps,
                                                                      render_mode)
        self.render_mode = render_mode
        size = self.image_size
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (size, size, 3), dtype=np.uint8),
            "proprio": spaces.Box(-np.inf, np.inf, (STATE_DIM,), dtype=np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.physics = ReacherPhysics()
        self._goal = np.zeros(STATE_DIM)
        self.target = np.zeros(2)
        """The invisible target point of the observation's `to_target` (reacher.xml places it at the origin)."""
        self._steps = 0

    # -- state API ---------------------------------------------------------------------------------------

    def set_state(self, state: Any) -> None:
        """Put the arm at a (4,) state (qpos then qvel): writes them and runs `mj_forward`, no physics step."""
        self.physics.set_state(check_state("state", state))

    def set_goal_state(self, goal: Any) -> None:
        """Set the goal: 2 joint angles (velocity 0) or a full (4,) state (its angles are compared, the goal
        image is drawn from it). The current state is left alone."""
        self._goal = check_state("goal_state", goal, allow_angles=True)

    def get_state(self) -> np.ndarray:
        """(4,) float64 state: qpos then qvel."""
        return self.physics.get_state()

    def get_goal_state(self) -> np.ndarray:
        return self._goal.copy()

    @staticmethod
    def is_success(state: Any, goal: Any) -> Any:
        """Every joint strictly within 0.05 rad (plain difference); (4,)/(2,) pairs -> bool, (N, 4) -> bool array."""
        return is_success(state, goal)

    # -- gymnasium API -----------------------------------------------------------------------------------

    def _observation(self) -> dict[str, np.ndarray]:
        state = self.get_state()
        return {"pixels": self.render_state(state), "proprio": state.astype(np.float32)}

    def _info(self) -> dict[str, Any]:
        state = self.get_state()
        to_target = self.target - self.physics.finger_xy()
        observation = np.concatenate([state[:QPOS_DIM], to_target, state[QPOS_DIM:]]).astype(np.float32)
        return {
            "success": is_success(state, self._goal),
            "state": state,
            "goal_state": self.get_goal_state(),
            "joint_error": float(joint_errors(state, self._goal)),
            "observation": observation,
        }

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw start and goal as dm_control's reacher draws starts (each joint uniform over its range, at rest)
        and a target point as it draws targets; options may impose the start (4,) and the goal ((4,) or 2 angles)."""
        super().reset(seed=seed)
        state, goal_state = reset_options(ENV, options)
        start = check_state("state", state) if state is not None else sample_states(self.np_random, 1)[0]
        goal = (check_state("goal_state", goal_state, allow_angles=True) if goal_state is not None
                else sample_states(self.np_random, 1)[0])
        self.target = sample_targets(self.np_random, 1)[0]
        self.physics.set_state(start)
        self._goal = goal
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self.physics.step(check_action(ENV, action), self._goal)
        self._steps += 1
        info = self._info()
        terminated = info["success"]
        truncated = self._steps >= self.max_episode_steps
        return self._observation(), 1.0 if terminated else 0.0, terminated, truncated, info

    def render_state(self, state: Any) -> np.ndarray:
        """(S, S, 3) uint8 frame of a (4,) or (2,) state, drawn with a separate model and data (the cached
        renderer's), so the environment's own state is untouched; equals `render_frames` of that state."""
        return render_frames(np.asarray(state, dtype=np.float64)[None], self.image_size)[0]

    def render(self) -> np.ndarray:
        return self.render_state(self.get_state())

    def goal_observation(self) -> np.ndarray:
        """(S, S, 3) uint8 frame of the goal state."""
        return self.render_state(self._goal)
