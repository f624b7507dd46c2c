"""Data-collection policies for Two-Room: uniform random actions and the scripted door-seeking expert.

Both are stateless functions of (position, target) batches so the collector can drive many episodes at once;
the "moving target" that keeps the expert's agent busy lives in the collector, which owns the targets.
Shapes: N batch of agents.
"""

from __future__ import annotations

import numpy as np

from lewm.envs.two_room import DEFAULT_GEOMETRY, TwoRoomGeometry

_LANE_MARGIN = 4.0
"""How far inside the door's edges a centre must be to head straight for the door centre without grazing
the jamb; outside that lane the expert first lines up on the near side of the door."""
_EXIT_OVERSHOOT = 2.0
"""How far past the wall faces the expert's approach and exit waypoints lie."""


def expert_directions(
    pos: np.ndarray, target: np.ndarray, geometry: TwoRoomGeometry = DEFAULT_GEOMETRY
) -> np.ndarray:
    """(N, 2) positions and targets -> (N, 2) unit directions of the noise-free expert.

    The reference expert heads for the door centre when the target is in the other room, then for the target.
    Aimed straight at the door centre from afar, it hits the wall and slides along it, and leaving the door
    diagonally it slides along the door jamb, both slowly; so the waypoints are refined, by position alone:

    * other room, not lined up with the door: go to a point just before the wall at the door's height;
    * other room, lined up (centre's y well inside the door): go to the door centre;
    * inside the door (the wall band): go to a point just past the wall face on the target's side, at a height
      inside the door, and from there (same room) straight to the target.

    A target inside the wall band belongs to the side of its x relative to the wall centre, and the agent heads
    for the wall face opposite it (within 12.5 px of it: a success), never through the door and back.
    """
    pos = np.asarray(pos, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    x, y = pos[..., 0], pos[..., 1]
    tx, ty = target[..., 0], target[..., 1]
    left, right = geometry.stop_left, geometry.stop_right
    door_x, door_y = geometry.door_center
    lane_low, lane_high = geometry.door_y0 + _LANE_MARGIN, geometry.door_y1 - _LANE_MARGIN
    span_low, span_high = geometry.door_span

    target_right = tx >= door_x
    agent_left, agent_right = x <= left, x >= right
    in_band = ~agent_left & ~agent_right
    crossing = (agent_left & target_right) | (agent_right & ~target_right)
    lined_up = (y >= lane_low) & (y <= lane_high)
    # A target reachable inside the door itself (in the band, y in the door span) is approached directly.
    target_in_door = (tx > left) & (tx < right) & (ty >= span_low) & (ty <= span_high)

    # Same room: the target itself, or for a target inside the wall band the point of the wall face opposite it
    # (within 12.5 px of it), so that the straight path never cuts through the door and back.
    way_x = np.where(target_right, np.maximum(tx, right), np.minimum(tx, left))
    way_y = ty.copy()
    approach = crossing & ~lined_up
    way_x = np.where(approach, np.where(agent_left, left - _EXIT_OVERSHOOT, right + _EXIT_OVERSHOOT), way_x)
    way_y = np.where(approach, door_y, way_y)
    enter = crossing & lined_up
    way_x = np.where(enter, door_x, way_x)
    way_y = np.where(enter, door_y, way_y)
    leave = in_band & ~target_in_door
    way_x = np.where(leave, np.where(target_right, right + _EXIT_OVERSHOOT, left - _EXIT_OVERSHOOT), way_x)
    way_y = np.where(leave, np.clip(ty, lane_low, lane_high), way_y)

    delta = np.stack([way_x - x, way_y - y], axis=-1)  # N 2
    norm = np.sqrt(np.sum(delta * delta, axis=-1, keepdims=True))  # N 1
    return np.where(norm > 1e-9, delta / np.maximum(norm, 1e-9), 0.0)


def expert_actions(
    pos: np.ndarray,
    target: np.ndarray,
    rng: np.random.Generator,
    noise_std: float = 1.0,
    geometry: TwoRoomGeometry = DEFAULT_GEOMETRY,
) -> np.ndarray:
    """(N, 2) -> (N, 2) float32 expert actions: unit direction plus Gaussian noise (std `noise_std`), clipped."""
    direction = expert_directions(pos, target, geometry)
    if noise_std > 0:
        direction = direction + noise_std * rng.standard_normal(direction.shape)
    return np.clip(direction, -1.0, 1.0).astype(np.float32)


def random_actions(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) float32 actions uniform in [-1, 1]."""
    return rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
