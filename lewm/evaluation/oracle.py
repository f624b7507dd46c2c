"""An oracle planner for Push-T: the protocol's CEM with the true pymunk physics as its "world model".

It bounds what any learned model can reach under the evaluation protocol (same pairs, budget, horizon, CEM
settings, receding horizon): if the oracle fails a pair, the protocol or the horizon is the limit, not the model.

Speed. One candidate (25 steps of 10 substeps) takes about 2.2 ms with `PushTPhysics`, so one plan of 300 x 30
candidates takes about 20 s per environment. `BatchedPushT` puts W independent copies of the world (walls,
agent, block) in ONE pymunk space, `SPACING` units apart so they never touch, and advances all of them with one
`space.step` per substep (Chipmunk loops in C); the PD controller reads and writes every agent at once through
`pymunk.batch`: about 0.13 ms per candidate at W = 300 (1.2 s per plan and environment), 16x faster. W = 300
(one environment's samples) beats one space for all environments: building is superlinear in W and a step of a
larger space costs more per world. The space is reused: re-placing bodies first parks them apart for
`collision_persistence` steps, so no cached contact (with its warm-start impulse) survives the teleport, as
`PushTPhysics.set_state` ensures by building a fresh space.

Following `PushTPhysics`. Nothing physical is re-stated here: the space settings, the wall shapes, the bodies'
shapes, mass, moment and centre of gravity are copied from a freshly built `PushTPhysics`, and the PD target
rule (scale, clamp box) is read off `PushTPhysics.pd_target` by probing it. What is re-stated: placing a state
(angle, then origin, then agent velocity; block at rest; no physics step, unlike `PushTPhysics.place`, since a
plan starts from the state the environment is in) and the PD velocity update. tests/evaluation/test_oracle.py
checks it against `PushTPhysics` stepping from the same placement: a world at offset 0 is bit-identical; at other
offsets, last-bit differences stay at 1e-11 except when the block is squeezed flat against a wall, where pymunk's
contact choice hangs on rounding (as it does between two `PushTPhysics` runs of one state placed or stepped to).

Cost (`pose_cost`): (position error / 20)^2 + (wrapped angle error / (pi/9))^2 of the LAST predicted state: the
success test's two errors in units of their thresholds (cost < 1 implies success), on the final state only, as
the latent cost scores the last predicted embedding (docs/reference.md section 5).

Shapes: N environments, S samples, W worlds in one space, H horizon blocks, K = frameskip * 2 block size,
T environment steps, B bodies in the space (2 W).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pymunk
import pymunk.batch
import torch
from einops import rearrange, repeat
from torch import Tensor

from lewm.envs.pusht import DEFAULT_GEOMETRY, STATE_DIM, PushTGeometry, PushTPhysics
from lewm.errors import LewmError
from lewm.evaluation.protocol import Pairs, Rollouts, receding_horizon, reset_envs
from lewm.planning import ActionBounds, CEMConfig, CEMPlanner

SPACING = 4096.0
"""Distance between neighbouring worlds. An agent moves at most about 37 units per step, so in 25 steps it stays
within about 1000 units of the arena; a power of two keeps the offsets exact."""
PARKING = ((2300.0, 256.0), (3000.0, 256.0))
"""Where agent and block wait, relative to their world, while cached contacts expire: outside the arena walls
and apart from each other, so nothing touches."""
FRAMESKIP = 5
"""Environment steps per action block on Push-T (the paper's frameskip)."""
ACTION_DIM = 2
_FIELDS = pymunk.batch.BodyFields


def _space_settings(space: pymunk.Space) -> dict[str, Any]:
    """The solver settings that shape a step, to copy onto the batched space."""
    names = ("gravity", "damping", "iterations", "collision_slop", "collision_bias", "collision_persistence",
             "idle_speed_threshold", "sleep_time_threshold")
    return {name: getattr(space, name) for name in names}


def _copy_shape(shape: pymunk.Shape, body: pymunk.Body, offset: tuple[float, float]) -> pymunk.Shape:
    """A copy of `shape` on `body`; static shapes (world coordinates) are moved by `offset`, shapes of moving
    bodies (body coordinates) are copied as they are."""
    dx, dy = offset
    if isinstance(shape, pymunk.Circle):
        copy = pymunk.Circle(body, shape.radius, shape.offset)
    elif isinstance(shape, pymunk.Segment):
        copy = pymunk.Segment(body, (shape.a.x + dx, shape.a.y + dy), (shape.b.x + dx, shape.b.y + dy), shape.radius)
    elif isinstance(shape, pymunk.Poly):
        vertices = [(v.x + dx, v.y + dy) for v in shape.get_vertices()]
        copy = pymunk.Poly(body, vertices, radius=shape.radius)
    else:
        raise LewmError(f"oracle: cannot copy a {type(shape).__name__} shape of PushTPhysics")
    copy.friction, copy.elasticity = shape.friction, shape.elasticity
    copy.surface_velocity = shape.surface_velocity
    return copy


def _copy_body(body: pymunk.Body) -> pymunk.Body:
    """A body of the same type, mass, moment and centre of gravity, with copies of its shapes."""
    if body.body_type == pymunk.Body.DYNAMIC:
        copy = pymunk.Body(body.mass, body.moment)
    else:
        copy = pymunk.Body(body_type=body.body_type)
    copy.center_of_gravity = body.center_of_gravity
    return copy


def probe_pd_target(geometry: PushTGeometry = DEFAULT_GEOMETRY) -> tuple[float, float, float]:
    """(scale, low, high) of `PushTPhysics.pd_target`: target = clip(agent + scale * action, low, high) per
    axis, read off the method itself (low/high infinite when it does not clamp), so a change there carries over."""
    physics = PushTPhysics(geometry)
    centre = geometry.world / 2
    physics.agent.position = (centre, centre)
    scale = (physics.pd_target(np.array([0.25, 0.25]))[0] - centre) / 0.25
    far = 1e4
    low = physics.pd_target(np.array([-far, -far]))[0]
    high = physics.pd_target(np.array([far, far]))[0]
    low = -math.inf if math.isclose(low, centre - scale * far) else low
    high = math.inf if math.isclose(high, centre + scale * far) else high
    return scale, low, high


class BatchedPushT:
    """W independent Push-T worlds in one pymunk space, stepped together: place states, step actions, read
    states, with the semantics of `PushTPhysics` (`set_state` without side effects, `step`, `get_state`)."""

    def __init__(self, worlds: int, geometry: PushTGeometry = DEFAULT_GEOMETRY) -> None:
        if worlds < 1:
            raise LewmError(f"oracle: worlds = {worlds} is invalid: must be >= 1")
        self.worlds, self.geometry = worlds, geometry
        template = PushTPhysics(geometry)
        self.space = pymunk.Space()
        for name, value in _space_settings(template.space).items():
            setattr(self.space, name, value)
        side = math.ceil(math.sqrt(worlds))
        index = np.arange(worlds)
        self.offsets = np.stack([index % side, index // side], axis=1) * SPACING  # W 2
        walls = [shape for shape in template.space.shapes if shape.body.body_type == pymunk.Body.STATIC]
        self.agents, self.blocks = [], []
        for dx, dy in self.offsets.tolist():
            self.space.add(*[_copy_shape(wall, self.space.static_body, (dx, dy)) for wall in walls])
            for source, bodies in ((template.agent, self.agents), (template.block, self.blocks)):
                body = _copy_body(source)
                self.space.add(body, *[_copy_shape(shape, body, (0.0, 0.0)) for shape in source.shapes])
                bodies.append(body)
        self.pd_scale, self.pd_low, self.pd_high = probe_pd_target(geometry)
        # rows of the agents and blocks in pymunk.batch's body order
        buffer = pymunk.batch.Buffer()
        pymunk.batch.get_space_bodies(self.space, _FIELDS.BODY_ID, buffer)
        row_of = {int(body_id): row for row, body_id in
                  enumerate(np.frombuffer(buffer.int_buf(), dtype=np.uintp))}
        self.agent_rows = np.array([row_of[body.id] for body in self.agents])  # W
        self.block_rows = np.array([row_of[body.id] for body in self.blocks])  # W
        self.bodies = len(row_of)  # B
        self._buffer = pymunk.batch.Buffer()
        self.used = 0
        """Worlds placed by the last `place` (the others are parked)."""

    # -- batch access ------------------------------------------------------------------------------------

    def _get(self, fields: pymunk.batch.BodyFields, width: int) -> np.ndarray:
        """(B, width) float64 copy of the given fields of every body."""
        self._buffer.clear()
        pymunk.batch.get_space_bodies(self.space, fields, self._buffer)
        return np.frombuffer(self._buffer.float_buf(), dtype=np.float64).reshape(self.bodies, width).copy()

    def _set(self, fields: pymunk.batch.BodyFields, values: np.ndarray) -> None:
        """Write (B, width) values into the given fields of every body."""
        buffer = pymunk.batch.Buffer()
        buffer.set_float_buf(np.ascontiguousarray(values, dtype=np.float64).reshape(-1))
        pymunk.batch.set_space_bodies(self.space, fields, buffer)

    def _pose_rows(self, agent_xy: np.ndarray, block_pose: np.ndarray, agent_velocity: np.ndarray) -> tuple:
        """World-frame (B, 1) angles and (B, 5) position+velocity+angular velocity rows for W' <= W worlds
        (agent xy, block xy+angle, agent velocity, each (W', .) in world-local units); the rest are parked."""
        used = len(agent_xy)
        offsets = self.offsets
        agent = np.array(PARKING[0]) + offsets  # W 2
        block = np.concatenate([np.array(PARKING[1]) + offsets, np.zeros((self.worlds, 1))], axis=1)  # W 3
        velocity = np.zeros((self.worlds, 2))
        agent[:used] = agent_xy + offsets[:used]
        block[:used, :2] = block_pose[:, :2] + offsets[:used]
        block[:used, 2] = block_pose[:, 2]
        velocity[:used] = agent_velocity
        angle = np.zeros((self.bodies, 1))
        angle[self.block_rows, 0] = block[:, 2]
        motion = np.zeros((self.bodies, 5))  # x y vx vy w
        motion[self.agent_rows, :2], motion[self.agent_rows, 2:4] = agent, velocity
        motion[self.block_rows, :2] = block[:, :2]
        return angle, motion

    def place(self, states: np.ndarray) -> None:
        """Put worlds 0..W'-1 at (W', 7) states (agent xy, block xy, angle, agent velocity; block at rest) and
        park the others. Bodies are first parked for `collision_persistence` steps, so that contacts cached
        before the teleport (and their impulses) have expired, as in the fresh space `PushTPhysics` builds."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[1] != STATE_DIM or len(states) > self.worlds:
            raise LewmError(f"oracle: states have shape {tuple(states.shape)}, expected (<= {self.worlds}, 7)")
        parked = np.zeros((0, 2))
        angle, motion = self._pose_rows(parked, np.zeros((0, 3)), parked)
        self._set(_FIELDS.ANGLE, angle)
        self._set(_FIELDS.POSITION | _FIELDS.VELOCITY | _FIELDS.ANGULAR_VELOCITY, motion)
        for _ in range(self.space.collision_persistence):
            self.space.step(self.geometry.substep_seconds)
        # the angle first: setting it turns a body about its centre of gravity, which moves its origin
        angle, motion = self._pose_rows(states[:, 0:2], states[:, 2:5], states[:, 5:7])
        self._set(_FIELDS.ANGLE, angle)
        self._set(_FIELDS.POSITION | _FIELDS.VELOCITY | _FIELDS.ANGULAR_VELOCITY, motion)
        self.used = len(states)

    def states(self) -> np.ndarray:
        """(W', 7) float64 states of the placed worlds, as `PushTPhysics.get_state` reads them."""
        data = self._get(_FIELDS.POSITION | _FIELDS.ANGLE | _FIELDS.VELOCITY, 5)  # B 5
        agent, block = data[self.agent_rows[: self.used]], data[self.block_rows[: self.used]]
        offsets = self.offsets[: self.used]
        return np.concatenate([agent[:, :2] - offsets, block[:, :2] - offsets, block[:, 2:3] % (2 * math.pi),
                               agent[:, 3:5]], axis=1)

    def step(self, actions: np.ndarray) -> None:
        """One control step of the placed worlds: (W', 2) actions, 10 PD-controlled substeps each, as
        `PushTPhysics.step` (the PD target rule read off it by `probe_pd_target`).

        The PD arithmetic runs in world-local coordinates and in the actions' precision: `PushTPhysics` follows
        numpy's scalar rules, so a float32 action (what environments receive) makes its PD loop run in float32."""
        g, used = self.geometry, self.used
        actions = np.asarray(actions)
        dtype = np.float32 if actions.dtype == np.float32 else np.float64
        rows, offsets = self.agent_rows[:used], self.offsets[:used]
        local = (self._get(_FIELDS.POSITION, 2)[rows] - offsets).astype(dtype)  # W' 2
        target = np.clip(local + actions.astype(dtype) * g.action_scale, self.pd_low, self.pd_high)  # W' 2
        for _ in range(g.substeps):
            data = self._get(_FIELDS.POSITION | _FIELDS.VELOCITY, 4)  # B 4
            position = (data[rows, :2] - offsets).astype(dtype)  # W' 2
            velocity = data[rows, 2:].astype(dtype)  # W' 2
            accel = g.kp * (target - position) - g.kv * velocity
            data[rows, 2:] = velocity + accel * g.substep_seconds
            self._set(_FIELDS.VELOCITY, data[:, 2:])
            self.space.step(g.substep_seconds)

    def rollout(self, states: np.ndarray, actions: np.ndarray, every: int = 1) -> np.ndarray:
        """Place (W', 7) states, run (W', T, 2) actions; -> (W', T // every, 7) the states after every
        `every`-th step."""
        self.place(states)
        out = []
        for t in range(actions.shape[1]):
            self.step(actions[:, t])
            if (t + 1) % every == 0:
                out.append(self.states())
        return np.stack(out, axis=1)


# -- CEM with the true dynamics ------------------------------------------------------------------------------


def pose_cost(predictions: Tensor, goal: Tensor, geometry: PushTGeometry = DEFAULT_GEOMETRY) -> Tensor:
    """(N, S, H, 7) predicted states, (N, 7) goals -> (N, S) cost of the last state: (position error / 20)^2 +
    (wrapped angle error / (pi/9))^2, the success test's errors in units of their thresholds (docs/reference.md
    section 6)."""
    last = predictions[:, :, -1].double()  # N S 7
    goal = goal.double()[:, None]  # N 1 7
    position = torch.linalg.vector_norm(last[..., :4] - goal[..., :4], dim=-1)  # N S
    angle = torch.remainder(last[..., 4] - goal[..., 4] + math.pi, 2 * math.pi) - math.pi  # N S
    return (position / geometry.success_position) ** 2 + (angle / geometry.success_angle) ** 2


class OracleRollout:
    """A CEM rollout (`prepare` + call, as `lewm.planning.PlainRollout`) whose "embeddings" are Push-T states:
    the history's last (7,) state is the start, the predictions are the true states after each action block.

    Candidates run `chunk` at a time in one `BatchedPushT` (one space per chunk is faster per candidate than one
    huge space). Actions are clipped to [-1, 1] and rounded to float32, as the protocol executes them."""

    def __init__(self, chunk: int = 300, frameskip: int = FRAMESKIP,
                 geometry: PushTGeometry = DEFAULT_GEOMETRY) -> None:
        self.simulator = BatchedPushT(chunk, geometry)
        self.frameskip = frameskip
        self.on_chunk: Any = None
        """Called after each chunk (e.g. a progress bar's update)."""

    def prepare(self, emb_history: Tensor, past_blocks: Tensor | None, samples: int, horizon: int) -> dict:
        """(N, h, 7) state history -> the start state of every candidate, (N*S, 7); the past blocks are not
        needed (the state is Markov)."""
        states = emb_history[:, -1].double().cpu().numpy()  # N 7
        return {"states": repeat(states, "n d -> (n s) d", s=samples)}  # (N*S) 7

    def __call__(self, context: dict, action_blocks: Tensor) -> Tensor:
        """(N*S, H, K) candidate blocks -> (N*S, H, 7) float64 states after each block."""
        blocks = action_blocks.double().cpu().numpy()
        actions = rearrange(blocks, "b h (f a) -> b (h f) a", f=self.frameskip)  # B T 2
        # the executed actions' values: clipped to the box and rounded to float32 as the protocol sends them; the
        # PD loop then runs in float64 here, while PushTEnv.step keeps a float32 action's arithmetic in float32
        # (float32 rounding of the agent's path: the oracle's rollouts approximate execution that closely)
        actions = np.clip(actions, -1.0, 1.0).astype(np.float32).astype(np.float64)
        states, chunk, out = context["states"], self.simulator.worlds, []
        for first in range(0, len(actions), chunk):
            rows = slice(first, first + chunk)
            out.append(self.simulator.rollout(states[rows], actions[rows], every=self.frameskip))  # b H 7
            if self.on_chunk is not None:
                self.on_chunk()
        return torch.from_numpy(np.concatenate(out))  # B H 7


def oracle_planner(config: CEMConfig, frameskip: int = FRAMESKIP, cost: Any = pose_cost) -> CEMPlanner:
    """CEM over blocks of `frameskip` raw actions (mean 0, std 1, as for normalised actions), bounded to the
    action box [-1, 1] so every candidate is what the environment executes."""
    block_dim = frameskip * ACTION_DIM
    bounds = ActionBounds(lower=-torch.ones(block_dim), upper=torch.ones(block_dim))  # K each
    return CEMPlanner(config, block_dim=block_dim, cost=cost, bounds=bounds)


def run_oracle(pairs: Pairs, config: CEMConfig, budget: int = 50, seed: int = 42, frameskip: int = FRAMESKIP,
               cost: Any = pose_cost, image_size: int = 32, show_progress: bool = False) -> Rollouts:
    """The protocol's receding-horizon loop on Push-T with the oracle planner: plan H blocks for every unfinished
    episode from its environment's true state, execute them all, replan; success at any step.

    It runs the protocol's own loop (`receding_horizon`: environments, success bookkeeping, block execution), so
    only the planner differs from `run_planner`: it is the ceiling a learned model can reach on these pairs."""
    from tqdm.auto import tqdm

    envs, frames = reset_envs("pusht", pairs, image_size, budget)
    planner = oracle_planner(config, frameskip, cost)
    rollout = OracleRollout(config.samples, frameskip, envs[0].unwrapped.geometry)
    generator = torch.Generator().manual_seed(seed)
    goals = torch.from_numpy(np.asarray(pairs.goals, dtype=np.float64))  # E 7
    bar = tqdm(desc="oracle CEM", unit="chunk", dynamic_ncols=True, disable=not show_progress)
    rollout.on_chunk = bar.update

    def plan(active: np.ndarray, step: int) -> np.ndarray:
        states = np.stack([envs[i].unwrapped.physics.get_state() for i in active])  # A 7
        bar.reset(total=len(active) * config.iterations + math.ceil(len(active) / config.samples))
        bar.set_postfix(step=step, active=len(active))
        actions = planner.plan(rollout, torch.from_numpy(states)[:, None], goals[active], generator=generator).actions
        return rearrange(actions.numpy().astype(np.float64), "a h (f d) -> a h f d", f=frameskip)  # A H frameskip 2

    try:
        return receding_horizon(envs, pairs, frames, budget, plan)
    finally:
        bar.close()
