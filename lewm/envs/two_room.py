"""Two-Room: a point agent in two rooms joined by one door, re-implemented from the reference geometry.

Everything is pure numpy on (N, 2) arrays of agent positions in reference units (the 224-px canvas, x to the
right, y down) so that the collector can step and render hundreds of episodes at once, and the gymnasium
environment is a thin single-agent shell over the same two functions (`step_positions`, `render_frames`).
A dataset frame and the environment's frame of the same state are therefore byte-identical, which the
evaluation protocol relies on when it resets the environment to states read from a dataset.

`step_positions` steps exactly as stable-worldmodel 0.1.1's swm/TwoRoom-v1 (float32 arithmetic and its wall
rule, quirks included; `tests/envs/test_reference_parity.py` checks it side by side).

Shapes: N batch of agents/envs, T time, S image side in pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from lewm.envs.checks import check_action, check_env_arguments, positive_int, reset_options
from lewm.errors import LewmError


@dataclass(frozen=True)
class TwoRoomGeometry:
    """The reference geometry (docs/reference.md section 11), in 224-px canvas units, kept in one place.

    Intervals are half-open in pixels: a band ``[lo, hi)`` covers the pixels whose centres lie inside it, so the
    border "rows 10-13" is ``[10, 14)`` and the wall "x in [107, 117]" is the ten pixel columns 107..116.
    """

    canvas: float = 224.0
    border_width: float = 4.0
    border_low: float = 10.0  # lines cover [10, 14) and [210, 214)
    border_high: float = 210.0
    wall_x0: float = 107.0
    wall_x1: float = 117.0
    door_y0: float = 35.0
    door_y1: float = 63.0
    radius: float = 7.0
    sigma: float = 7.0
    speed: float = 5.0
    success_distance: float = 16.0
    collision_margin: float = 0.5  # an agent stopped by the wall is put this far outside the face (reference)
    door_tolerance: float = 1.75  # the door span is widened by this much for the centre's y test
    expert_waypoint_radius: float = 10.5

    # -- derived quantities (properties, so that a modified geometry stays consistent) ------------------

    @property
    def area_low(self) -> float:
        """Smallest centre coordinate the agent can have (inner edge of the border plus its radius)."""
        return self.border_low + self.border_width + self.radius

    @property
    def area_high(self) -> float:
        """Largest centre coordinate the agent can have."""
        return self.border_high - self.radius

    @property
    def face_left(self) -> float:
        """The largest x a centre may reach from the left outside the door (100: wall face minus radius)."""
        return self.wall_x0 - self.radius

    @property
    def face_right(self) -> float:
        """The smallest x a centre may reach from the right outside the door (124)."""
        return self.wall_x1 + self.radius

    @property
    def stop_left(self) -> float:
        """Where an agent coming from the left is stopped by the wall (99.5)."""
        return self.wall_x0 - self.radius - self.collision_margin

    @property
    def stop_right(self) -> float:
        """Where an agent coming from the right is stopped by the wall (124.5)."""
        return self.wall_x1 + self.radius + self.collision_margin

    @property
    def wall_center_x(self) -> float:
        """The x that separates the rooms (112)."""
        return 0.5 * (self.wall_x0 + self.wall_x1)

    @property
    def door_center(self) -> tuple[float, float]:
        """(x, y) of the door's centre, the expert's waypoint (112, 49)."""
        return self.wall_center_x, 0.5 * (self.door_y0 + self.door_y1)

    @property
    def door_span(self) -> tuple[float, float]:
        """The closed y interval in which a centre may be inside the wall band (the door widened)."""
        return self.door_y0 - self.door_tolerance, self.door_y1 + self.door_tolerance


DEFAULT_GEOMETRY = TwoRoomGeometry()
AGENT_COLOR = (255.0, 0.0, 0.0)
TARGET_COLOR = (0.0, 255.0, 0.0)
_BLOB_EXTENT = 4.0  # in sigmas: beyond it 255 * alpha < 0.1, so skipping those pixels changes no byte


# -- dynamics ------------------------------------------------------------------------------------------


def in_wall(pos: np.ndarray, geometry: TwoRoomGeometry = DEFAULT_GEOMETRY) -> np.ndarray:
    """(..., 2) -> (...) bool: the centre is strictly between the wall faces (100 < x < 124) with y outside the
    door span, where no sequence of steps can take it (positions up to the faces are reachable)."""
    pos = np.asarray(pos, dtype=np.float64)
    x, y = pos[..., 0], pos[..., 1]
    low, high = geometry.door_span
    return (x > geometry.face_left) & (x < geometry.face_right) & ((y < low) | (y > high))


def step_positions(
    pos: np.ndarray, action: np.ndarray, geometry: TwoRoomGeometry = DEFAULT_GEOMETRY
) -> np.ndarray:
    """One kinematic step for a batch: (N, 2) positions and (N, 2) actions -> (N, 2) new positions (float64
    holding float32 values).

    The reference's rule, quirks included (stable-worldmodel 0.1.1 TwoRoom-v1 steps identically):
    - positions and actions are float32 (the reference keeps its state in float32 tensors), the action is clamped
      to [-1, 1] and moves the centre by ``speed * action``, and the result is clamped to the movement area;
    - the side the agent starts on is decided by its old x against the wall's centre line (112), not the faces;
    - from the left, a new x past the wall face (x > 100, the face minus the radius) with the new y outside the
      door span (door half-size + 1.75 margin) is set to 99.5, the face minus 0.5; from the right, x < 124 is set
      to 124.5. This holds even for an agent that starts inside the door: leaving the door span vertically
      while inside the wall band snaps it out to the face of the side of 112 it is on (reference behaviour).
    A new x in (99.5, 100] (or [124, 124.5)) outside the door is therefore left as it is (reference behaviour).
    """
    pos = np.asarray(pos, dtype=np.float32)
    action = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
    new = np.clip(pos + action * np.float32(geometry.speed), geometry.area_low, geometry.area_high)  # N 2
    low, high = geometry.door_span
    new_x, new_y = new[..., 0], new[..., 1]
    outside_door = (new_y < low) | (new_y > high)
    from_left = pos[..., 0] < geometry.wall_center_x
    hit_left = from_left & (new_x > geometry.face_left) & outside_door
    hit_right = ~from_left & (new_x < geometry.face_right) & outside_door
    new_x = np.where(hit_left, np.float32(geometry.stop_left), new_x)
    new_x = np.where(hit_right, np.float32(geometry.stop_right), new_x)
    return np.stack([new_x, new_y], axis=-1).astype(np.float64)


def sample_free_positions(
    rng: np.random.Generator, n: int, geometry: TwoRoomGeometry = DEFAULT_GEOMETRY
) -> np.ndarray:
    """(n, 2) positions uniform over the area an agent can occupy outside the wall band (either room).

    One draw per coordinate (no rejection loop), so the number of random numbers used is fixed and the
    collector's episodes depend only on their seed.
    """
    lo, hi = geometry.area_low, geometry.area_high
    left_len = geometry.stop_left - lo
    right_len = hi - geometry.stop_right
    u = rng.uniform(0.0, left_len + right_len, size=n)
    x = np.where(u < left_len, lo + u, geometry.stop_right + (u - left_len))
    y = rng.uniform(lo, hi, size=n)
    return np.stack([x, y], axis=-1)


def distances(state: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(..., 2), (..., 2) -> (...) Euclidean distance between agent and target."""
    delta = np.asarray(state, dtype=np.float64) - np.asarray(goal, dtype=np.float64)
    return np.sqrt(np.sum(delta * delta, axis=-1))


def is_success(state: np.ndarray, goal: np.ndarray, geometry: TwoRoomGeometry = DEFAULT_GEOMETRY) -> Any:
    """Agent-target distance below the success distance (16 px); bool for one pair, bool array for a batch."""
    result = distances(state, goal) < geometry.success_distance
    return bool(result) if np.ndim(result) == 0 else result


# -- rendering -----------------------------------------------------------------------------------------


def _band(centres: np.ndarray, lo: float, hi: float, scale: float) -> np.ndarray:
    """(S,) bool: pixels whose centre lies in [lo, hi); at coarse sizes a band narrower than a pixel that
    misses every centre still gets the one pixel containing its middle, so no line or door disappears."""
    mask = (centres >= lo) & (centres < hi)
    if not mask.any():
        index = int(min(max(math.floor(0.5 * (lo + hi) / scale), 0), len(centres) - 1))
        mask[index] = True
    return mask


@lru_cache(maxsize=16)
def _background(size: int, geometry: TwoRoomGeometry) -> np.ndarray:
    """(S, S, 3) uint8 static scene: white, black border lines and wall with the door gap (cached, read-only)."""
    scale = geometry.canvas / size
    centres = (np.arange(size) + 0.5) * scale  # S, pixel centres in reference units
    width = geometry.border_width
    lines = _band(centres, geometry.border_low, geometry.border_low + width, scale)
    lines |= _band(centres, geometry.border_high, geometry.border_high + width, scale)
    frame = (centres >= geometry.border_low) & (centres < geometry.border_high + width)  # S, the outline's extent
    wall_cols = _band(centres, geometry.wall_x0, geometry.wall_x1, scale)
    door_rows = _band(centres, geometry.door_y0, geometry.door_y1, scale)
    # The border is a rectangle outline (rows/cols 10-13 and 210-213, spanning 10..213), not full-width lines.
    black = (lines[:, None] & frame[None, :]) | (frame[:, None] & lines[None, :])  # S S (rows, cols)
    black |= frame[:, None] & ~door_rows[:, None] & wall_cols[None, :]  # the wall joins the outline
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    image[black] = 0
    image.setflags(write=False)
    return image


def _check_positions(name: str, value: Any) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise LewmError(f"render_frames: {name} has shape {tuple(array.shape)}, expected (N, 2) xy positions")
    if not np.isfinite(array).all():
        raise LewmError(f"render_frames: {name} has a non-finite value: {array[~np.isfinite(array)][0]}")
    return array


def _draw_blobs(
    frames: np.ndarray, pos: np.ndarray, color: tuple[float, float, float], geometry: TwoRoomGeometry
) -> None:
    """Blend a Gaussian blob per frame, in place: frames (N, S, S, 3) uint8, pos (N, 2) float32.

    alpha = exp(-d^2 / (2 sigma^2)) is separable, and beyond 4 sigma it cannot change a byte, so each blob is
    computed on a small (W, W) window gathered around it: the result equals a full-frame blend exactly.
    """
    n, size = frames.shape[0], frames.shape[1]
    scale = np.float32(geometry.canvas / size)
    sigma = np.float32(geometry.sigma)
    reach = _BLOB_EXTENT * geometry.sigma
    width = min(size, int(2 * reach / float(scale)) + 2)  # W, covers every pixel within `reach` of the centre
    first = np.ceil((pos - reach) / scale - 0.5).astype(np.int64)  # N 2 (x, y): first pixel within reach
    first = np.clip(first, 0, size - width)
    offsets = np.arange(width)
    cols = first[:, 0, None] + offsets  # N W
    rows = first[:, 1, None] + offsets  # N W
    centre_x = (cols.astype(np.float32) + np.float32(0.5)) * scale  # N W
    centre_y = (rows.astype(np.float32) + np.float32(0.5)) * scale
    inv = np.float32(-0.5) / (sigma * sigma)
    ax = np.exp(inv * (centre_x - pos[:, 0, None]) ** 2)  # N W
    ay = np.exp(inv * (centre_y - pos[:, 1, None]) ** 2)  # N W
    alpha = ay[:, :, None] * ax[:, None, :]  # N W W
    # Gather/scatter each channel through flat byte offsets into the contiguous frames: far faster than
    # 3-axis fancy indexing of (N, S, S, 3), and a (N, W, W) plane per channel avoids a size-3 inner loop.
    base = (np.arange(n) * (size * size * 3))[:, None, None] + (rows * (size * 3))[:, :, None]  # N W 1
    base = base + (cols * 3)[:, None, :]  # N W W: offset of each window pixel's red byte
    flat = frames.reshape(-1)  # a view
    for channel, value in enumerate(color):
        where = base + channel if channel else base
        plane = flat[where].astype(np.float32)  # N W W
        plane += alpha * (np.float32(value) - plane)
        flat[where] = np.rint(plane).astype(np.uint8)


def render_frames(
    agent: np.ndarray,
    size: int = 224,
    target: np.ndarray | None = None,
    geometry: TwoRoomGeometry = DEFAULT_GEOMETRY,
    agent_color: tuple[float, float, float] = AGENT_COLOR,
) -> np.ndarray:
    """(N, 2) agent xy -> (N, S, S, 3) uint8 frames, drawn directly at side S (no resize), deterministic.

    The scene is evaluated at the S x S pixel centres in reference units: white background, black border
    lines and wall (with the door gap), an optional green target blob (target (N, 2) or (2,)), then the red
    agent blob on top. Positions are rounded to float32 first, so a float64 state and its float32 copy in a
    dataset give the same bytes.
    """
    size = positive_int("render_frames", "size", size)
    agent_xy = _check_positions("agent", agent).astype(np.float32)  # N 2
    n = agent_xy.shape[0]
    frames = np.empty((n, size, size, 3), dtype=np.uint8)  # N S S 3
    frames[...] = _background(size, geometry)
    if n == 0:
        return frames
    if target is not None:
        target_xy = np.asarray(target, dtype=np.float64)
        if target_xy.shape == (2,):
            target_xy = np.broadcast_to(target_xy, (n, 2))
        target_xy = _check_positions("target", target_xy)
        if target_xy.shape[0] != n:
            raise LewmError(f"render_frames: target has {target_xy.shape[0]} rows but agent has {n}")
        _draw_blobs(frames, target_xy.astype(np.float32), TARGET_COLOR, geometry)
    _draw_blobs(frames, agent_xy, agent_color, geometry)
    return frames


# -- gymnasium environment -----------------------------------------------------------------------------


def _check_xy(name: str, value: Any, geometry: TwoRoomGeometry) -> np.ndarray:
    """A user-given position as float64 (2,), or a LewmError naming the value."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise LewmError(f"two-room: {name} = {value!r} is invalid: expected 2 numbers (x, y)") from error
    if array.shape != (2,):
        raise LewmError(f"two-room: {name} has shape {tuple(array.shape)}, expected (2,) (x, y)")
    if not np.isfinite(array).all():
        raise LewmError(f"two-room: {name} = {array.tolist()} is invalid: not finite")
    if (array < 0).any() or (array > geometry.canvas).any():
        raise LewmError(
            f"two-room: {name} = {array.tolist()} is outside the canvas [0, {geometry.canvas:g}]"
        )
    return array


class TwoRoomEnv(gymnasium.Env):
    """Two-Room as a gymnasium environment: observation = {pixels (S, S, 3) uint8, proprio (2,) agent xy}.

    Reward is minus the agent-target distance, an episode terminates on success (distance < 16 px) and is
    truncated after `max_episode_steps` steps. The state-setting API (`set_state`, `set_goal_state`,
    `reset(options={"state": ..., "goal_state": ...})`) is what the evaluation protocol uses to replay
    dataset start/goal pairs.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        image_size: int = 224,
        max_episode_steps: int = 100,
        render_mode: str | None = "rgb_array",
        geometry: TwoRoomGeometry = DEFAULT_GEOMETRY,
    ):
        self.image_size, self.max_episode_steps = check_env_arguments("two-room", image_size, max_episode_steps,
                                                                      render_mode)
        self.render_mode = render_mode
        self.geometry = geometry
        size = self.image_size
        self.observation_space = spaces.Dict(
            {
                "pixels": spaces.Box(0, 255, (size, size, 3), dtype=np.uint8),
                "proprio": spaces.Box(0.0, float(geometry.canvas), (2,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        center = geometry.area_low
        self._state = np.array([center, center], dtype=np.float64)
        self._goal = np.array([geometry.area_high, geometry.area_high], dtype=np.float64)
        self._steps = 0

    # -- state API ---------------------------------------------------------------------------------------

    def set_state(self, xy: Any) -> None:
        """Put the agent at xy (224-px units); a position in the canvas but inside the wall is refused."""
        state = _check_xy("state", xy, self.geometry)
        if in_wall(state, self.geometry):
            raise LewmError(
                f"two-room: state = {state.tolist()} is inside the wall (x in the wall band, y not in the door)"
            )
        self._state = state

    def set_goal_state(self, xy: Any) -> None:
        """Set the target position (any point of the canvas; every such point is within 16 px of a reachable one)."""
        self._goal = _check_xy("goal_state", xy, self.geometry)

    def get_state(self) -> np.ndarray:
        """(2,) float32 agent xy, as stored in the `state`/`proprio` columns of a dataset."""
        return self._state.astype(np.float32)

    def get_goal_state(self) -> np.ndarray:
        """(2,) float32 target xy."""
        return self._goal.astype(np.float32)

    @staticmethod
    def is_success(state: Any, goal: Any, geometry: TwoRoomGeometry = DEFAULT_GEOMETRY) -> Any:
        """Distance < 16 px; works on (2,) pairs (bool) and on (N, 2) batches (bool array)."""
        return is_success(state, goal, geometry)

    # -- gymnasium API -----------------------------------------------------------------------------------

    def _observation(self) -> dict[str, np.ndarray]:
        return {"pixels": self.render_state(self._state), "proprio": self.get_state()}

    def _info(self) -> dict[str, Any]:
        distance = float(distances(self._state, self._goal))
        return {
            "success": distance < self.geometry.success_distance,
            "distance": distance,
            "state": self.get_state(),
            "goal_state": self.get_goal_state(),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Sample agent and target uniformly over the free area (either room); options may impose them."""
        super().reset(seed=seed)
        state, goal_state = reset_options("two-room", options)
        if state is not None:
            self.set_state(state)
        else:
            self._state = sample_free_positions(self.np_random, 1, self.geometry)[0]
        if goal_state is not None:
            self.set_goal_state(goal_state)
        else:
            self._goal = sample_free_positions(self.np_random, 1, self.geometry)[0]
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        array = check_action("two-room", action)
        self._state = step_positions(self._state[None], array[None], self.geometry)[0]
        self._steps += 1
        info = self._info()
        terminated = bool(info["success"])
        truncated = self._steps >= self.max_episode_steps
        return self._observation(), -info["distance"], terminated, truncated, info

    def render_state(self, xy: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 frame of the agent at xy, target not drawn: exactly a dataset frame of that state."""
        return render_frames(np.asarray(xy, dtype=np.float64)[None], self.image_size, geometry=self.geometry)[0]

    def render(self) -> np.ndarray:
        """The current frame (target not drawn), as in the observation."""
        return self.render_state(self._state)

    def goal_observation(self) -> np.ndarray:
        """(S, S, 3) uint8 frame of the goal state: the agent drawn at the target position."""
        return self.render_state(self._goal)
