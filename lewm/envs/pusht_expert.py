"""A scripted Push-T expert: it keeps pushing the T block towards goal poses drawn one after another.

The reference's expert data were human/scripted demonstrations distributed as a file; this expert produces
data of the same kind (the block moves in most 25-step windows, towards varied poses) from the physics alone.

How it pushes. Contacts are frictionless, so pushing at a boundary point moves the block along that point's
inward normal u and turns it by the torque r x u about the centre of gravity (r from the centre to the point).
At each decision the expert scores candidate points on the T's outline by how well that motion (translation u,
rotation (r x u) / I, compared in a metric where one radian counts as `angle_scale` units) points along the
remaining pose error, picks one of the best at random, walks around the block to a spot just outside the
point (orbiting at a safe radius when the block is in the way), then pushes through it for a few steps.
A goal reached (or abandoned after `goal_timeout` steps) gives way to a new one, so the block keeps moving.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lewm.envs.pusht import (
    DEFAULT_GEOMETRY,
    PushTGeometry,
    PushTPhysics,
    block_to_world,
    distance_to_block,
    sample_states,
    wrap_angle,
)
from lewm.envs.pusht_weak import weak_actions


@dataclass(frozen=True)
class ExpertSettings:
    """Tuning of the scripted expert (world units and control steps)."""

    contact_spacing: float = 6.0
    """Distance between candidate contact points along the T's outline."""
    standoff: float = 5.0
    """Gap between the agent's edge and the block at the approach spot."""
    arrive_distance: float = 6.0
    """The approach is done when the agent is this close to its spot."""
    orbit_margin: float = 14.0
    """Clearance beyond the T's farthest point at which the agent circles around the block."""
    push_steps: tuple[int, int] = (3, 9)
    """A push lasts a uniform number of steps in this range (inclusive)."""
    push_speed: tuple[float, float] = (0.25, 0.6)
    """Action magnitude while pushing (uniform in this range)."""
    top_choices: int = 4
    """A contact is drawn uniformly among this many best-scoring candidates."""
    angle_scale: float = 60.0
    """World units that one radian of angle error counts as when comparing motions."""
    goal_position: float = 12.0
    """A goal counts as reached when the block origin is this close ..."""
    goal_angle: float = 0.2
    """... and its angle this close (radians)."""
    goal_timeout: int = 80
    """Steps after which an unreached goal is abandoned for a new one."""


def _outline_candidates(geometry: PushTGeometry, spacing: float, clearance: float) -> tuple[np.ndarray, np.ndarray]:
    """Block-frame contact points on the T's outline and their outward normals, keeping only points whose
    approach spot (point + normal * clearance) is clear of the block."""
    (bx0, by0, bx1, by1), (sx0, sy0, sx1, sy1) = geometry.bar, geometry.stem
    edges = [  # (start, end, outward normal)
        ((bx0, by0), (bx1, by0), (0.0, -1.0)),
        ((bx1, by0), (bx1, by1), (1.0, 0.0)),
        ((sx1, by1), (bx1, by1), (0.0, 1.0)),
        ((sx1, sy0), (sx1, sy1), (1.0, 0.0)),
        ((sx0, sy1), (sx1, sy1), (0.0, 1.0)),
        ((sx0, sy0), (sx0, sy1), (-1.0, 0.0)),
        ((bx0, by1), (sx0, by1), (0.0, 1.0)),
        ((bx0, by0), (bx0, by1), (-1.0, 0.0)),
    ]
    points, normals = [], []
    for start, end, normal in edges:
        start, end = np.asarray(start), np.asarray(end)
        length = float(np.linalg.norm(end - start))
        count = max(1, int(length // spacing))
        for fraction in (np.arange(count) + 0.5) / count:
            points.append(start + fraction * (end - start))
            normals.append(normal)
    points, normals = np.asarray(points), np.asarray(normals)  # C 2
    spots = points + normals * clearance
    clear = distance_to_block(spots[None], np.zeros((1, 3)), geometry)[0] >= clearance - 1e-6
    return points[clear], normals[clear]


class PushTExpert:
    """A stateful expert for one episode; `act(state)` returns the next (2,) action in [-1, 1]."""

    def __init__(self, rng: np.random.Generator, noise_std: float = 0.1,
                 geometry: PushTGeometry = DEFAULT_GEOMETRY, settings: ExpertSettings | None = None):
        self.rng = rng
        self.noise_std = noise_std
        self.geometry = geometry
        self.settings = settings or ExpertSettings()
        clearance = geometry.agent_radius + self.settings.standoff
        self.points, self.normals = _outline_candidates(geometry, self.settings.contact_spacing, clearance)
        self.clearance = clearance
        self.cog = np.mean([[(x0 + x1) / 2, (y0 + y1) / 2] for x0, y0, x1, y1 in geometry.rectangles()], axis=0)
        corners = np.array([[x, y] for x0, y0, x1, y1 in geometry.rectangles() for x in (x0, x1) for y in (y0, y1)])
        self.orbit_radius = float(np.linalg.norm(corners - self.cog, axis=1).max()) + geometry.agent_radius \
            + self.settings.orbit_margin
        self.inertia = PushTPhysics(geometry).block.moment
        self.goal = self._new_goal()
        self.goal_steps = 0
        self.contact: int | None = None
        self.pushing = 0
        self.push_speed = 0.0

    def _new_goal(self) -> np.ndarray:
        """(3,) block pose drawn as the reference's reset draws blocks."""
        return sample_states(self.rng, 1, self.geometry)[0, 2:5]

    def _choose_contact(self, pose: np.ndarray) -> int:
        """Index of a candidate contact whose push moves the block's pose towards the goal."""
        angle = pose[2]
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        push = -self.normals @ rotation.T  # C 2, world push directions (inward normals)
        lever = (self.points - self.cog) @ rotation.T  # C 2, from the centre of gravity
        torque = lever[:, 0] * push[:, 1] - lever[:, 1] * push[:, 0]  # C
        scale = self.settings.angle_scale
        motion = np.column_stack([push, scale * torque / self.inertia])  # C 3, pose change per unit impulse
        error = np.array([*(self.goal[:2] - pose[:2]), scale * wrap_angle(self.goal[2] - angle)])
        score = motion @ error / (np.linalg.norm(motion, axis=1) * np.linalg.norm(error) + 1e-9)
        best = np.argsort(-score)[: self.settings.top_choices]
        return int(self.rng.choice(best))

    def _goal_reached(self, pose: np.ndarray) -> bool:
        return bool(np.linalg.norm(pose[:2] - self.goal[:2]) < self.settings.goal_position
                    and abs(wrap_angle(pose[2] - self.goal[2])) < self.settings.goal_angle)

    def _toward(self, agent: np.ndarray, point: np.ndarray, speed: float = 1.0) -> np.ndarray:
        """Action that sets the PD target past `point` (twice the offset), at most `speed` long."""
        action = 2.0 * (point - agent) / self.geometry.action_scale
        norm = float(np.linalg.norm(action))
        return action * (speed / norm) if norm > speed else action

    def _path_blocked(self, agent: np.ndarray, spot: np.ndarray, pose: np.ndarray) -> bool:
        """Whether walking straight from the agent to the spot would touch the block."""
        path = agent + np.linspace(0.0, 1.0, 12)[:, None] * (spot - agent)  # 12 2
        return bool(distance_to_block(path[None], pose[None], self.geometry)[0].min()
                    < self.geometry.agent_radius + 1.0)

    def act(self, state: np.ndarray) -> np.ndarray:
        """(7,) state -> (2,) float32 action in [-1, 1]."""
        agent, pose = np.asarray(state[:2], dtype=np.float64), np.asarray(state[2:5], dtype=np.float64)
        self.goal_steps += 1
        if self._goal_reached(pose) or self.goal_steps > self.settings.goal_timeout:
            self.goal, self.goal_steps, self.contact, self.pushing = self._new_goal(), 0, None, 0
        if self.contact is None:
            self.contact = self._choose_contact(pose)
        point = block_to_world(self.points[self.contact][None, None], pose[None])[0, 0]
        normal = block_to_world(self.normals[self.contact][None, None], np.array([0.0, 0.0, pose[2]])[None])[0, 0]
        spot = point + normal * self.clearance
        if self.pushing > 0:
            self.pushing -= 1
            action = -normal * self.push_speed
            if self.pushing == 0:
                self.contact = None
        elif np.linalg.norm(spot - agent) < self.settings.arrive_distance:
            low, high = self.settings.push_steps
            self.pushing = int(self.rng.integers(low, high + 1)) - 1
            self.push_speed = float(self.rng.uniform(*self.settings.push_speed))
            action = -normal * self.push_speed
        elif self._path_blocked(agent, spot, pose):
            action = self._toward(agent, self._orbit_point(agent, spot, pose))
        else:
            action = self._toward(agent, spot)
        if self.noise_std > 0:
            action = action + self.noise_std * self.rng.standard_normal(2)
        return self._inside_arena(agent, action)

    def _inside_arena(self, agent: np.ndarray, action: np.ndarray) -> np.ndarray:
        """The action, limited so that its PD target (agent + scale * action) stays inside the arena, then
        clipped to [-1, 1]: the reference physics does not keep the agent in, so the expert does it itself
        (an agent outside the walls can no longer push the block, and the data would show it off-screen)."""
        g = self.geometry
        low = (g.agent_low - agent) / g.action_scale
        high = (g.agent_high - agent) / g.action_scale
        return np.clip(np.clip(action, low, high), -1.0, 1.0).astype(np.float32)

    def _orbit_point(self, agent: np.ndarray, spot: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """A point on the safe circle around the block, up to 0.8 rad further round towards the spot."""
        centre = block_to_world(self.cog[None, None], pose[None])[0, 0]
        here = np.arctan2(*(agent - centre)[::-1])
        there = np.arctan2(*(spot - centre)[::-1])
        turn = float(np.clip(wrap_angle(there - here), -0.8, 0.8))
        heading = here + turn
        return centre + self.orbit_radius * np.array([np.cos(heading), np.sin(heading)])


def simulate_pusht(episode_ids: np.ndarray, policy: str, steps: int, seed: int, noise_std: float,
                   geometry: PushTGeometry = DEFAULT_GEOMETRY) -> tuple[np.ndarray, np.ndarray]:
    """Run N episodes of T = `steps` frames: -> states (N, T, 7) float32, actions (N, T, 2) float32.

    policy: "expert" (the scripted pusher), "weak" (the reference's collection policy, `lewm.envs.pusht_weak`)
    or "random" (uniform actions). Row t of the actions is the action taken after frame t; the last row is NaN.
    Each episode draws its reset and its actions from its own generator seeded with (seed, episode number). The
    policy reads the live float64 physics state; the physics is stepped with the float32 actions as stored.
    """
    states = np.empty((len(episode_ids), steps, 7), dtype=np.float32)
    actions = np.full((len(episode_ids), steps, 2), np.nan, dtype=np.float32)
    physics = PushTPhysics(geometry)
    for row, episode in enumerate(episode_ids):
        rng = np.random.default_rng([seed, int(episode)])
        physics.set_state(sample_states(rng, 1, geometry)[0])
        expert = PushTExpert(rng, noise_std, geometry) if policy == "expert" else None
        for t in range(steps):
            state = physics.get_state()
            states[row, t] = state
            if t == steps - 1:
                break
            if expert is not None:
                action = expert.act(state)
            elif policy == "weak":
                action = weak_actions(rng.uniform(-1.0, 1.0, size=2), state[:2], state[2:4], geometry)
            else:
                action = rng.uniform(-1.0, 1.0, size=2).astype(np.float32)
            actions[row, t] = action
            physics.step(action)
    return states, actions


def block_motion(states: np.ndarray, offset: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Block displacement and absolute angle change over every `offset`-step window of states (E, T, 7):
    -> two (E, T - offset) arrays."""
    moved = np.linalg.norm(states[:, offset:, 2:4] - states[:, :-offset, 2:4], axis=-1)
    turned = np.abs(wrap_angle(states[:, offset:, 4] - states[:, :-offset, 4]))
    return moved, turned
