"""Push-T: a circular agent pushes a T-shaped block on a table (pymunk physics), re-implemented from the
reference geometry (docs/reference.md section 11) so that it steps exactly as stable-worldmodel 0.1.1's swm/PushT-v1.

World: 512 x 512 units, x to the right, y down, static walls at 5 and 506. The agent is a kinematic circle of
radius 15 driven by a PD controller (kp 100, kv 20) towards `agent + 100 * action` over 10 substeps of 0.01 s.
The block is a T of mass 1 (bar (-60, 0)-(60, 30), stem (-15, 30)-(15, 120) in block coordinates); the space has
zero damping, so the block keeps no velocity beyond the next substep and moves only while it is pushed; contacts
are frictionless, as in the reference.

State (7,): agent xy, block xy (the block frame's origin, the middle of the bar's top edge), block angle
(mod 2 pi), agent velocity; proprio (4,): agent xy, agent velocity.

Reference quirks reproduced on purpose (they define the benchmark; `tests/envs/test_reference_parity.py` steps
both side by side): the T's moment of inertia is twice the bar's, its centre of gravity is the unweighted mean
of the two rectangles' centroids, placing a state sets the agent's velocity from the state and runs one physics
step, a reset places the goal state (one step) before the start state in the same space, and the PD target is
not kept inside the arena, so random actions can drive the agent out of it. `PushTGeometry.keep_agent_in_arena`
(or `PushTEnv(keep_agent_in_arena=True)`) clamps the target inside the arena instead, a departure from the
reference. Frames are rasterised by `render_frames` in numpy (no display, no pygame), from float32 states, so a
dataset frame equals the environment's frame of that state.

Shapes: N batch of states, T time, S image side in pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import gymnasium
import numpy as np
import pymunk
from gymnasium import spaces

from lewm.envs.checks import check_action, check_env_arguments, positive_int, reset_options
from lewm.errors import LewmError

STATE_DIM = 7
"""agent x, agent y, block x, block y, block angle, agent vx, agent vy."""
POSE_DIM = 5
"""The part of the state the success test and reward compare: agent xy, block xy, block angle."""


@dataclass(frozen=True)
class PushTGeometry:
    """The reference geometry and dynamics constants, in world units (docs/reference.md section 11)."""

    world: float = 512.0
    wall_low: float = 5.0
    wall_high: float = 506.0
    wall_radius: float = 2.0
    agent_radius: float = 15.0
    bar: tuple[float, float, float, float] = (-60.0, 0.0, 60.0, 30.0)
    """Bar rectangle in block coordinates: x0, y0, x1, y1."""
    stem: tuple[float, float, float, float] = (-15.0, 30.0, 15.0, 120.0)
    """Stem rectangle in block coordinates: x0, y0, x1, y1."""
    block_mass: float = 1.0
    action_scale: float = 100.0
    """The PD target is agent position + action_scale * action."""
    kp: float = 100.0
    kv: float = 20.0
    substeps: int = 10
    substep_seconds: float = 0.01
    success_position: float = 20.0
    """L2 norm of the (agent xy, block xy) error below which a state counts as reached."""
    success_angle: float = math.pi / 9
    """Block angle error (wrapped) below which a state counts as reached."""
    decoration: tuple[float, float, float] = (256.0, 256.0, math.pi / 4)
    """Pose of the fixed green T drawn under every frame, as in the reference frames (not the goal)."""
    position_margin: float = 64.0
    """How far outside the world a state's block position (and, with `keep_agent_in_arena`, agent position) may
    lie. The kinematic agent can squeeze a block pinned against a wall a little through it (as in the reference),
    so reachable states can leave [0, 512] slightly; the unclamped agent can go anywhere."""
    agent_reset: tuple[float, float] = (50.0, 450.0)
    block_reset: tuple[float, float] = (100.0, 400.0)
    keep_agent_in_arena: bool = False
    """Clamp the PD target inside the arena. Off by default: the reference does not, so its agent can leave the
    arena (a known defect of the reference, kept for parity); on, the agent stays inside the walls."""

    @property
    def agent_low(self) -> float:
        """Smallest PD target coordinate: the agent's edge touches the inner face of the wall."""
        return self.wall_low + self.wall_radius + self.agent_radius

    @property
    def agent_high(self) -> float:
        return self.wall_high - self.wall_radius - self.agent_radius

    def rectangles(self) -> tuple[tuple[float, float, float, float], ...]:
        return (self.bar, self.stem)


DEFAULT_GEOMETRY = PushTGeometry()
BACKGROUND = (255, 255, 255)
DECORATION_COLOR = (144, 238, 144)  # LightGreen, as in the reference frames
BLOCK_COLOR = (119, 136, 153)  # LightSlateGray
AGENT_COLOR = (65, 105, 225)  # RoyalBlue


def wrap_angle(angle: Any) -> Any:
    """Angles mapped to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def pose_errors(state: Any, goal: Any) -> tuple[Any, Any]:
    """(position error, angle error) between states (..., >= 5) and goals: the L2 norm of the (agent xy, block
    xy) difference and the absolute wrapped block-angle difference."""
    state = np.asarray(state, dtype=np.float64)
    goal = np.asarray(goal, dtype=np.float64)
    position = np.linalg.norm(state[..., :4] - goal[..., :4], axis=-1)
    angle = np.abs(wrap_angle(state[..., 4] - goal[..., 4]))
    return position, angle


def is_success(state: Any, goal: Any, geometry: PushTGeometry = DEFAULT_GEOMETRY) -> Any:
    """The reference test: position error < 20 and angle error < pi/9; (7,) pairs -> bool, (N, 7) -> (N,)."""
    position, angle = pose_errors(state, goal)
    result = (position < geometry.success_position) & (angle < geometry.success_angle)
    return bool(result) if np.ndim(result) == 0 else result


def block_to_world(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(..., P, 2) block-frame points -> world points for block poses (..., 3) = x, y, angle."""
    cos, sin = np.cos(pose[..., 2:3]), np.sin(pose[..., 2:3])  # ... 1
    x, y = points[..., 0], points[..., 1]
    return np.stack([cos * x - sin * y + pose[..., 0:1], sin * x + cos * y + pose[..., 1:2]], axis=-1)


def world_to_block(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(..., P, 2) world points -> block-frame points for block poses (..., 3)."""
    cos, sin = np.cos(pose[..., 2:3]), np.sin(pose[..., 2:3])  # ... 1
    x, y = points[..., 0] - pose[..., 0:1], points[..., 1] - pose[..., 1:2]
    return np.stack([cos * x + sin * y, -sin * x + cos * y], axis=-1)


def distance_to_block(points: np.ndarray, pose: np.ndarray, geometry: PushTGeometry = DEFAULT_GEOMETRY) -> np.ndarray:
    """(..., P) distance from world points (..., P, 2) to the T of pose (..., 3); 0 inside it."""
    local = world_to_block(points, pose)
    best = None
    for x0, y0, x1, y1 in geometry.rectangles():
        dx = np.maximum(np.maximum(x0 - local[..., 0], local[..., 0] - x1), 0.0)
        dy = np.maximum(np.maximum(y0 - local[..., 1], local[..., 1] - y1), 0.0)
        distance = np.hypot(dx, dy)
        best = distance if best is None else np.minimum(best, distance)
    return best


# -- physics -------------------------------------------------------------------------------------------------


def _tee_vertices(geometry: PushTGeometry) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Bar and stem polygons in the reference's vertex order (pymunk's hull, contact features and hence the
    exact floating-point results depend on it)."""
    (bx0, by0, bx1, by1), (sx0, sy0, sx1, sy1) = geometry.bar, geometry.stem
    bar = [(bx0, by1), (bx1, by1), (bx1, by0), (bx0, by0)]
    stem = [(sx0, sy0), (sx0, sy1), (sx1, sy1), (sx1, sy0)]
    return bar, stem


class PushTPhysics:
    """One pymunk space holding the walls, the kinematic agent and the T block: place, step and read states.

    Built as the reference builds its space (same shapes, vertex and segment order, insertion order), so the
    same calls give bit-identical trajectories. The space persists across `place` as in the reference; `set_state`
    starts from a fresh space so that what follows depends on the state alone (what the collectors need).
    """

    def __init__(self, geometry: PushTGeometry = DEFAULT_GEOMETRY):
        self.geometry = geometry
        self.reset_space()

    def reset_space(self) -> None:
        """A fresh space: no cached contacts, block at rest at the origin. Pymunk keeps the contacts (and their
        impulses) and the block's last velocity across a teleport, so a `place` into a used space can differ
        slightly from one into a fresh space, as in the reference."""
        geometry = self.geometry
        self.space = pymunk.Space()
        self.space.gravity = (0.0, 0.0)
        self.space.damping = 0.0  # velocity lasts one substep at most: the block moves only while pushed
        low, high = geometry.wall_low, geometry.wall_high
        ends = [((low, high), (low, low)), ((low, low), (high, low)), ((high, low), (high, high)),
                ((low, high), (high, high))]  # the reference's segments, directions included
        walls = [pymunk.Segment(self.space.static_body, a, b, geometry.wall_radius) for a, b in ends]
        self.space.add(*walls)

        self.agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        agent_shape = pymunk.Circle(self.agent, geometry.agent_radius)
        self.space.add(self.agent, agent_shape)
        bar, stem = _tee_vertices(geometry)
        # Reference quirk: the T's moment is twice the bar's (the stem's moment is computed from the bar's
        # vertices), about the block frame's origin.
        moment = 2 * pymunk.moment_for_poly(geometry.block_mass, bar)
        self.block = pymunk.Body(geometry.block_mass, moment)
        shapes = [pymunk.Poly(self.block, bar), pymunk.Poly(self.block, stem)]
        # Reference quirk: the centre of gravity is the unweighted mean of the two rectangles' centroids.
        self.block.center_of_gravity = (shapes[0].center_of_gravity + shapes[1].center_of_gravity) / 2
        # Shapes keep pymunk's default friction 0: the reference sets friction on bodies, which pymunk ignores,
        # so its contacts are frictionless.
        self.space.add(self.block, *shapes)

    def place(self, state: np.ndarray) -> None:
        """Put agent and block at a (5,) or (7,) state in the current space, then run one physics step.

        Reference behaviour: the agent's velocity is set from the state's last two values (zero for 5 values),
        the angle is set before the position (setting it turns the body about its centre of gravity), and the
        one step moves the agent by velocity * dt and lets any overlap with the block resolve.
        """
        state = np.asarray(state, dtype=np.float64)
        self.agent.velocity = (float(state[5]), float(state[6])) if len(state) >= STATE_DIM else (0.0, 0.0)
        self.agent.position = (float(state[0]), float(state[1]))
        self.block.angle = float(state[4])
        self.block.position = (float(state[2]), float(state[3]))
        self.space.step(self.geometry.substep_seconds)

    def set_state(self, state: np.ndarray) -> None:
        """`place` a state in a fresh space, so that what follows depends on the state alone."""
        self.reset_space()
        self.place(state)

    def get_state(self) -> np.ndarray:
        """(7,) float64 state: agent xy, block xy, block angle mod 2 pi (in [0, 2 pi)), agent velocity."""
        agent, block = self.agent, self.block
        return np.array([agent.position.x, agent.position.y, block.position.x, block.position.y,
                         block.angle % (2 * math.pi), agent.velocity.x, agent.velocity.y])

    def pd_target(self, action: np.ndarray) -> tuple[Any, Any]:
        """The point the PD controller drives the agent to: agent + scale * action.

        Reference behaviour: the arithmetic follows numpy's scalar rules, so a float32 action gives a float32
        target (numpy >= 2 keeps float32 when a Python float meets a float32) and the PD loop then runs in
        float32, exactly as the reference's Vec2d arithmetic on a float32 action does. The point is not kept
        inside the arena unless the geometry's `keep_agent_in_arena` asks for it (a departure from the
        reference)."""
        g = self.geometry
        offset = np.asarray(action) * g.action_scale
        x = self.agent.position.x + offset[0]
        y = self.agent.position.y + offset[1]
        if g.keep_agent_in_arena:
            x, y = min(max(x, g.agent_low), g.agent_high), min(max(y, g.agent_low), g.agent_high)
        return x, y

    def step(self, action: np.ndarray) -> None:
        """One control step: 10 PD-controlled substeps towards the action's target point (explicit Euler on
        the agent's velocity, then a physics step, as the reference)."""
        g = self.geometry
        tx, ty = self.pd_target(action)
        for _ in range(g.substeps):
            position, velocity = self.agent.position, self.agent.velocity
            ax = g.kp * (tx - position.x) - g.kv * velocity.x
            ay = g.kp * (ty - position.y) - g.kv * velocity.y
            self.agent.velocity = (velocity.x + ax * g.substep_seconds, velocity.y + ay * g.substep_seconds)
            self.space.step(g.substep_seconds)


def sample_states(rng: np.random.Generator, count: int, geometry: PushTGeometry = DEFAULT_GEOMETRY) -> np.ndarray:
    """(count, 7) reset states as the reference draws them (agent in [50, 450]^2, block in [100, 400]^2, any
    angle), redrawing the agent where it would overlap the block; velocity zero."""
    states = np.zeros((count, STATE_DIM))
    for row in range(count):
        block = np.append(rng.uniform(*geometry.block_reset, size=2), rng.uniform(-2 * np.pi, 2 * np.pi))
        while True:
            agent = rng.uniform(*geometry.agent_reset, size=2)
            if distance_to_block(agent[None], block) > geometry.agent_radius + 1.0:
                break
        states[row, :5] = [agent[0], agent[1], block[0], block[1], block[2] % (2 * np.pi)]
    return states


# -- rendering -----------------------------------------------------------------------------------------------


def _supersample(size: int) -> int:
    """Sub-pixel samples per axis: coverage is the share of a pixel's samples inside a shape (anti-aliasing);
    4 x 4 at small sizes where a pixel spans several world units, 2 x 2 from 128 px up."""
    return 4 if size < 128 else 2


def _pixel_window(low: np.ndarray, high: np.ndarray, size: int, world: float) -> tuple[int, int, int, int]:
    """Pixel rows/cols [r0, r1) x [c0, c1) covering the world box [low, high] (xy), clipped to the image."""
    scale = size / world
    c0, r0 = (np.floor(low * scale) - 1).astype(int)
    c1, r1 = (np.ceil(high * scale) + 1).astype(int)
    return max(r0, 0), min(r1, size), max(c0, 0), min(c1, size)


def _window_points(window: tuple[int, int, int, int], size: int, world: float) -> np.ndarray:
    """(h, w, K*K, 2) float32 world coordinates of the sub-pixel samples of the pixels in a window."""
    r0, r1, c0, c1 = window
    k = _supersample(size)
    offsets = (np.arange(k) + 0.5) / k
    ys = (np.arange(r0, r1)[:, None] + offsets[None, :]) * (world / size)  # h K
    xs = (np.arange(c0, c1)[:, None] + offsets[None, :]) * (world / size)  # w K
    grid_x = np.broadcast_to(xs[None, :, None, :], (r1 - r0, c1 - c0, k, k))  # h w K K
    grid_y = np.broadcast_to(ys[:, None, :, None], (r1 - r0, c1 - c0, k, k))
    return np.stack([grid_x, grid_y], axis=-1).reshape(r1 - r0, c1 - c0, k * k, 2).astype(np.float32)


def _paint_t(image: np.ndarray, pose: np.ndarray, color: tuple[int, int, int], geometry: PushTGeometry) -> None:
    """Blend the T of pose (3,) = x, y, angle into a float32 (S, S, 3) image, in place, by sample coverage."""
    size = image.shape[0]
    corners = np.array([[x, y] for x0, y0, x1, y1 in geometry.rectangles() for x in (x0, x1) for y in (y0, y1)])
    world = block_to_world(corners[None].astype(np.float32), pose.astype(np.float32)[None])[0]  # 8 2
    window = _pixel_window(world.min(axis=0), world.max(axis=0), size, geometry.world)
    if window[0] >= window[1] or window[2] >= window[3]:
        return
    points = _window_points(window, size, geometry.world)  # h w KK 2
    local = world_to_block(points.reshape(1, -1, 2), pose.astype(np.float32)[None])[0]  # P 2
    inside = np.zeros(len(local), dtype=bool)
    for x0, y0, x1, y1 in geometry.rectangles():
        inside |= (local[:, 0] >= x0) & (local[:, 0] <= x1) & (local[:, 1] >= y0) & (local[:, 1] <= y1)
    _blend(image, window, inside.reshape(points.shape[:3]).mean(axis=-1, dtype=np.float32), color)


def _paint_disc(image: np.ndarray, centre: np.ndarray, radius: float, color: tuple[int, int, int],
                geometry: PushTGeometry) -> None:
    """Blend a disc into a float32 (S, S, 3) image, in place, by sample coverage."""
    size = image.shape[0]
    window = _pixel_window(centre - radius, centre + radius, size, geometry.world)
    if window[0] >= window[1] or window[2] >= window[3]:
        return
    points = _window_points(window, size, geometry.world)  # h w KK 2
    offset = points - centre.astype(np.float32)
    inside = np.einsum("hwkc,hwkc->hwk", offset, offset) <= np.float32(radius * radius)
    _blend(image, window, inside.mean(axis=-1, dtype=np.float32), color)


def _blend(image: np.ndarray, window: tuple[int, int, int, int], alpha: np.ndarray,
           color: tuple[int, int, int]) -> None:
    r0, r1, c0, c1 = window
    region = image[r0:r1, c0:c1]
    region += alpha[..., None] * (np.asarray(color, dtype=np.float32) - region)


@lru_cache(maxsize=8)
def _background(size: int, geometry: PushTGeometry) -> np.ndarray:
    """(S, S, 3) float32 white table with the fixed green T (cached, read-only)."""
    image = np.full((size, size, 3), BACKGROUND, dtype=np.float32)
    _paint_t(image, np.asarray(geometry.decoration), DECORATION_COLOR, geometry)
    image.setflags(write=False)
    return image


def render_frames(states: Any, size: int = 224, geometry: PushTGeometry = DEFAULT_GEOMETRY,
                  block_color: tuple[int, int, int] = BLOCK_COLOR) -> np.ndarray:
    """(N, >= 5) states -> (N, S, S, 3) uint8 frames, deterministic, drawn directly at side S.

    White table, the fixed green T, the grey block, the blue agent on top; each pixel's colour blends by the
    share of its sub-samples a shape covers, computed only inside each shape's bounding box. States are
    rounded to float32 first, so a float64 state and its float32 copy in a dataset give the same bytes.
    """
    size = positive_int("pusht render_frames", "size", size)
    states = np.asarray(states, dtype=np.float32)
    if states.ndim != 2 or states.shape[1] < POSE_DIM:
        raise LewmError(f"pusht render_frames: states have shape {tuple(states.shape)}, expected (N, >= 5)")
    if not np.isfinite(states[:, :POSE_DIM]).all():
        raise LewmError("pusht render_frames: a state has a non-finite value")
    background = _background(size, geometry)
    frames = np.empty((len(states), size, size, 3), dtype=np.uint8)
    for index, state in enumerate(states):
        image = background.copy()
        _paint_t(image, state[2:5], block_color, geometry)
        _paint_disc(image, state[0:2], geometry.agent_radius, AGENT_COLOR, geometry)
        frames[index] = np.rint(image).astype(np.uint8)
    return frames


# -- gymnasium environment -----------------------------------------------------------------------------------


def _check_state(name: str, value: Any, geometry: PushTGeometry, wrap: bool = True) -> np.ndarray:
    """A user-given state as float64 (7,) (velocity zero when 5 numbers are given), or a LewmError. The angle is
    wrapped to [0, 2 pi) only when `wrap`: a state to place keeps its angle as given, as the reference sets it."""
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise LewmError(f"pusht: {name} = {value!r} is invalid: expected 5 or 7 numbers") from error
    if array.shape not in ((POSE_DIM,), (STATE_DIM,)):
        raise LewmError(f"pusht: {name} has {array.size} numbers, expected 5 (agent xy, block xy, angle) or 7 "
                        "(+ agent velocity)")
    if not np.isfinite(array).all():
        raise LewmError(f"pusht: {name} = {array.tolist()} is invalid: not finite")
    low, high = -geometry.position_margin, geometry.world + geometry.position_margin
    # Reference behaviour: nothing keeps the agent in the arena, so any finite agent position is reachable; only
    # the block (held by the walls) and, on request, the agent are bounded.
    checked = array[:4] if geometry.keep_agent_in_arena else array[2:4]
    if (checked < low).any() or (checked > high).any():
        raise LewmError(f"pusht: {name} = {array.tolist()} has a position outside [{low:g}, {high:g}] (the world "
                        f"[0, {geometry.world:g}] and a margin)")
    full = np.zeros(STATE_DIM)
    full[: array.size] = array
    if wrap:
        full[4] %= 2 * np.pi
    return full


class PushTEnv(gymnasium.Env):
    """Push-T as a gymnasium environment: observation = {pixels (S, S, 3) uint8, proprio (4,) agent xy and
    velocity}; action (2,) in [-1, 1] moves the PD target relative to the agent (100 units per unit action).

    Reward is minus the distance between the goal's and the current pose (agent xy, block xy, wrapped angle);
    an episode terminates on success and is truncated after `max_episode_steps` steps. `set_state`,
    `set_goal_state` and `reset(options={"state": ..., "goal_state": ...})` replay dataset start/goal pairs.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, image_size: int = 224, max_episode_steps: int = 300, render_mode: str | None = "rgb_array",
                 geometry: PushTGeometry = DEFAULT_GEOMETRY, keep_agent_in_arena: bool = False):
        self.image_size, self.max_episode_steps = check_env_arguments("pusht", image_size, max_episode_steps,
                                                                      render_mode)
        if not isinstance(keep_agent_in_arena, (bool, np.bool_)):
            raise LewmError(f"pusht: keep_agent_in_arena = {keep_agent_in_arena!r} is invalid: must be True or False")
        if keep_agent_in_arena:
            geometry = replace(geometry, keep_agent_in_arena=True)  # a departure from the reference, on request
        self.render_mode = render_mode
        self.geometry = geometry
        size = self.image_size
        self.observation_space = spaces.Dict({
            "pixels": spaces.Box(0, 255, (size, size, 3), dtype=np.uint8),
            "proprio": spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self.physics = PushTPhysics(geometry)
        self.physics.set_state(np.array([100.0, 100.0, 256.0, 256.0, 0.0]))
        self._goal = np.array([*geometry.decoration[:2], *geometry.decoration[:2], geometry.decoration[2], 0, 0])
        self._steps = 0

    # -- state API ---------------------------------------------------------------------------------------

    def set_state(self, state: Any) -> None:
        """Put agent and block at a (5,) or (7,) state (agent xy, block xy, angle[, agent velocity]).

        Reference behaviour: the state is placed in the current space and one physics step runs, so the agent
        moves by velocity * 0.01 and a block that was being pushed may drift by its last substep's velocity;
        `get_state` right after returns that stepped state."""
        self.physics.place(_check_state("state", state, self.geometry, wrap=False))

    def set_goal_state(self, state: Any) -> None:
        """Set the goal pose (agent xy, block xy, block angle; a velocity part is kept but never compared)."""
        self._goal = _check_state("goal_state", state, self.geometry)

    def get_state(self) -> np.ndarray:
        """(7,) float32 state, in the order of a dataset's `state` column."""
        return self.physics.get_state().astype(np.float32)

    def get_goal_state(self) -> np.ndarray:
        return self._goal.astype(np.float32)

    @staticmethod
    def is_success(state: Any, goal: Any, geometry: PushTGeometry = DEFAULT_GEOMETRY) -> Any:
        """Position error < 20 and angle error < pi/9; (7,) pairs -> bool, (N, 7) batches -> bool array."""
        return is_success(state, goal, geometry)

    # -- gymnasium API -----------------------------------------------------------------------------------

    def _observation(self) -> dict[str, np.ndarray]:
        state = self.get_state()
        return {"pixels": self.render_state(state), "proprio": state[[0, 1, 5, 6]]}

    def _info(self) -> dict[str, Any]:
        state = self.physics.get_state()
        position, angle = pose_errors(state, self._goal)
        return {
            "success": bool(position < self.geometry.success_position and angle < self.geometry.success_angle),
            "position_error": float(position),
            "angle_error": float(angle),
            "state": state.astype(np.float32),
            "goal_state": self.get_goal_state(),
        }

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Draw start and goal as the reference resets do; options may impose either.

        Reference behaviour: in a fresh space the goal state is placed first (one physics step), then the start
        state (one more step), so a goal whose agent overlaps the block can leave cached contacts and a block
        velocity that nudge the start's step, exactly as in the reference."""
        super().reset(seed=seed)
        state, goal_state = reset_options("pusht", options)
        start = (_check_state("state", state, self.geometry, wrap=False) if state is not None
                 else sample_states(self.np_random, 1, self.geometry)[0])
        goal = (_check_state("goal_state", goal_state, self.geometry, wrap=False) if goal_state is not None
                else sample_states(self.np_random, 1, self.geometry)[0])
        self.physics.reset_space()
        self.physics.place(goal)
        self.physics.place(start)
        self._goal = goal.copy()
        self._goal[4] %= 2 * np.pi
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        array = check_action("pusht", action)
        if np.asarray(action).dtype == np.float32:
            array = array.astype(np.float32)  # exact; keeps the reference's float32 PD arithmetic (pd_target)
        self.physics.step(np.clip(array, -1.0, 1.0))
        self._steps += 1
        info = self._info()
        terminated = info["success"]
        truncated = self._steps >= self.max_episode_steps
        reward = -float(np.hypot(info["position_error"], info["angle_error"]))
        return self._observation(), reward, terminated, truncated, info

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 frame of a state: exactly a dataset frame of that state."""
        return render_frames(np.asarray(state)[None], self.image_size, geometry=self.geometry)[0]

    def render(self) -> np.ndarray:
        return self.render_state(self.get_state())

    def goal_observation(self) -> np.ndarray:
        """(S, S, 3) uint8 frame of the goal state: agent and block drawn at their goal poses."""
        return self.render_state(self._goal)
