"""Collect Two-Room, Push-T, Reacher or Cube episodes into a community-layout HDF5 file (docs/reference.md
section 4).

Episodes are simulated in batches of `num_envs` (Two-Room: the vectorised `step_positions`; Push-T: pymunk, one
episode after another; Reacher and Cube: MuJoCo, one episode after another), rendered with the environment's
`render_frames` from the states that are stored (so a dataset frame equals the environment's frame of that
state) and streamed to disk with `EpisodeWriter` one episode at a time, straight into the output file, with a
commit after every batch: a killed collection leaves a valid file of its committed episodes (no temporary
file), and `mode="resume"` continues it.

Each episode draws its random numbers from its own generator seeded with (seed, episode number), so the file
depends on the seed alone, not on `num_envs`, and appending or resuming with the same seed continues the
sequence instead of repeating it: a resumed file equals an uninterrupted one. The settings that shape the
episodes are recorded in the file's attributes (`CollectSettings`), so a resume with other settings is refused.

The expert chases a moving target: on arrival (< 16 px) the next target is drawn uniformly over the free area,
so the agent keeps moving and start/goal pairs 25 steps apart are rarely trivially close (docs/reference.md section 6).
Push-T also offers "weak", the reference's own collection policy (random actions kept near the block,
`lewm.envs.pusht_weak`). Reacher's expert is lewm's joint-space controller chasing moving joint goals
(`lewm.envs.reacher_expert`; the reference's SAC expert is not published); Cube's is OGBench's scripted
CubeMarkovOracle (`lewm.envs.cube_expert`).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from tqdm import tqdm

from lewm.config import check_field
from lewm.data.hdf5 import COMPLETE_KEY, EpisodeWriter, Mode, file_attributes
from lewm.envs import pusht
from lewm.envs.checks import positive_int
from lewm.envs.policies import expert_directions, random_actions
from lewm.envs.pusht_expert import block_motion, simulate_pusht
from lewm.envs.registry import MUJOCO_ENVS, canonical_name
from lewm.envs.two_room import (
    DEFAULT_GEOMETRY,
    TwoRoomGeometry,
    distances,
    render_frames,
    sample_free_positions,
    step_positions,
)
from lewm.errors import LewmError

WHERE = "collect"
"""How this module's errors name themselves (`lewm collect` drops it: its error prefix already says so)."""
CollectMode = Literal["x", "w", "a", "resume"]
"""x: a new file; w: replace the file; a: add episodes; resume: continue an interrupted collection."""
SETTINGS_PREFIX = "collect_"
"""Prefix of the file attributes that record a collection's `CollectSettings`."""
POLICIES = ("random", "expert", "weak")
"""Collection policies; "weak" (the reference's Push-T WeakPolicy) exists for Push-T only."""
GOAL_OFFSET = 25
"""Steps between an evaluation start and its goal (docs/reference.md section 6): the window the summary measures."""
BLOCK_MOTION = 20.0
"""Push-T: a 25-step window counts as moving the block when the block goes further than this (world units,
the success test's position tolerance) or turns more than pi/9 (its angle tolerance)."""
DEFAULT_NOISE = {"two-room": 1.0, "pusht": 0.1, "reacher": 0.5, "cube": 0.1}
"""Expert action noise per environment: Two-Room's wide noise covers the action space while crossing rooms;
the Push-T expert must stay on its contact point, so it gets a little; Reacher's joint controller gets enough
to cover the torque box; Cube's oracle is OGBench's own noisy expert (its noise argument)."""
MUJOCO_BATCH = 4
"""Episodes per batch for the environments simulated one episode after another (Push-T, Reacher, Cube): a
batch only groups work for the worker processes, and its frames travel between processes at once."""


def _check_policy(env: str, policy: str) -> None:
    """A LewmError unless `policy` is one of POLICIES and exists for `env` (weak: Push-T only)."""
    if policy not in POLICIES:
        raise LewmError(f"{WHERE}: unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")
    if policy == "weak" and env != "pusht":
        raise LewmError(f"{WHERE}: policy 'weak' is for pusht only, not {env!r}: use random or expert")


@dataclass(frozen=True)
class CollectSettings:
    """What decides a collection's episodes, as opposed to how fast it runs (num_envs, workers). Recorded in the
    file's attributes as collect_NAME, so that a resume cannot continue a file with different episodes."""

    env: str
    policy: str
    steps: int
    image_size: int
    seed: int
    noise_std: float
    compression: str | None
    shadows: bool | None = None
    """Cube only: frames rendered with shadows (the reference) or without (faster on a CPU); None elsewhere."""

    def attributes(self) -> dict[str, Any]:
        """The settings as HDF5 root attributes (None, which HDF5 cannot store, as "none"; `shadows` only when it
        applies, so files of the other environments keep their attributes)."""
        fields = {name: value for name, value in asdict(self).items() if name != "shadows" or value is not None}
        return {SETTINGS_PREFIX + name: "none" if value is None else value for name, value in fields.items()}

    def difference(self, attrs: Mapping[str, Any]) -> str | None:
        """The first setting that `attrs` records otherwise, as 'NAME = RECORDED, not CURRENT'; None if all agree."""
        for key, value in self.attributes().items():
            if attrs.get(key) != value:
                return f"{key.removeprefix(SETTINGS_PREFIX)} = {attrs.get(key)!r}, not {value!r}"
        return None


def collect_settings(env_name: str, policy: str, steps: Any, image_size: Any, seed: Any, noise_std: Any,
                     compression: Any, shadows: Any = None) -> CollectSettings:
    """Check the arguments that shape the episodes (a LewmError names the first bad one); noise None takes the
    environment's `DEFAULT_NOISE`, shadows None Cube's reference rendering (with shadows)."""
    env = canonical_name(env_name)
    _check_policy(env, policy)
    steps = positive_int(WHERE, "steps_per_episode", steps)
    image_size = positive_int(WHERE, "image_size", image_size)
    is_int = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    check_field(is_int and seed >= 0, "seed", seed, "must be an integer >= 0", WHERE)
    noise = DEFAULT_NOISE[env] if noise_std is None else noise_std
    is_number = isinstance(noise, (int, float, np.floating)) and not isinstance(noise, bool)
    check_field(is_number and math.isfinite(noise) and noise >= 0, "noise_std", noise,
                "must be a finite number >= 0", WHERE)
    check_field(compression in (None, "gzip", "lzf"), "compression", compression, "use gzip, lzf or none", WHERE)
    if env != "cube" and shadows is not None:
        raise LewmError(f"{WHERE}: shadows = {shadows!r} applies to cube only, not {env!r}")
    check_field(shadows in (None, True, False), "shadows", shadows, "must be True or False", WHERE)
    shadows = (True if shadows is None else bool(shadows)) if env == "cube" else None
    return CollectSettings(env, policy, steps, image_size, int(seed), float(noise), compression, shadows)


def recorded_env_options(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor options an environment needs so that its frames look like a file's (from the file's root
    attributes): Cube's `shadows` when the file records it; empty otherwise."""
    shadows = attrs.get(SETTINGS_PREFIX + "shadows")
    return {} if shadows is None or isinstance(shadows, str) else {"shadows": bool(shadows)}


def nontrivial_fraction(states: np.ndarray, offset: int = GOAL_OFFSET, distance: float = 16.0) -> float | None:
    """Share of (t, t + offset) state pairs more than `distance` apart; states (E, T, 2). None if T <= offset."""
    if states.shape[1] <= offset:
        return None
    gaps = distances(states[:, offset:], states[:, :-offset])  # E T-offset
    return float(np.mean(gaps > distance))


def block_moving_fraction(states: np.ndarray, offset: int = GOAL_OFFSET) -> float | None:
    """Push-T: share of `offset`-step windows of states (E, T, 7) in which the block moves more than
    `BLOCK_MOTION` or turns more than pi/9 (so the window's goal is not met by leaving the block alone)."""
    if states.shape[1] <= offset:
        return None
    moved, turned = block_motion(states, offset)
    return float(np.mean((moved > BLOCK_MOTION) | (turned > pusht.DEFAULT_GEOMETRY.success_angle)))


def trivial_fraction(states: np.ndarray, offset: int = GOAL_OFFSET) -> float | None:
    """Push-T: share of `offset`-step windows whose start already passes the success test for their end."""
    if states.shape[1] <= offset:
        return None
    return float(np.mean(pusht.is_success(states[:, :-offset], states[:, offset:])))


def simulate_two_room(
    episode_ids: np.ndarray,
    policy: str,
    steps: int,
    seed: int,
    noise_std: float,
    geometry: TwoRoomGeometry = DEFAULT_GEOMETRY,
) -> tuple[np.ndarray, np.ndarray]:
    """Run a batch of N episodes of T = `steps` frames: -> states (N, T, 2) float32, actions (N, T, 2) float32.

    Row t of the actions is the action taken after frame t; the last row is NaN (no action follows the last
    frame). The dynamics are driven by the float32 actions as stored, so replaying a file's actions in the
    environment reproduces its states.
    """
    n = len(episode_ids)
    starts = np.empty((n, 2))  # N 2
    targets = np.empty((n, steps, 2))  # N T 2: the initial target and up to T - 1 redraws
    noise = np.empty((n, steps, 2))  # N T 2
    for row, episode in enumerate(episode_ids):
        rng = np.random.default_rng([seed, int(episode)])
        starts[row] = sample_free_positions(rng, 1, geometry)[0]
        if policy == "expert":
            targets[row] = sample_free_positions(rng, steps, geometry)
            noise[row] = rng.standard_normal((steps, 2))
        else:
            noise[row] = random_actions(steps, rng)

    rows = np.arange(n)
    pointer = np.zeros(n, dtype=np.int64)  # N: index of each episode's current target
    pos = starts
    states = np.empty((n, steps, 2), dtype=np.float32)
    actions = np.full((n, steps, 2), np.nan, dtype=np.float32)
    for t in range(steps):
        states[:, t] = pos
        if t == steps - 1:
            break
        if policy == "expert":
            target = targets[rows, pointer]  # N 2
            action = expert_directions(pos, target, geometry) + noise_std * noise[:, t]
            action = np.clip(action, -1.0, 1.0).astype(np.float32)
        else:
            action = noise[:, t].astype(np.float32)
        actions[:, t] = action
        pos = step_positions(pos, action, geometry)  # driven by the float32 action as stored
        if policy == "expert":
            reached = distances(pos, target) < geometry.success_distance
            pointer = np.minimum(pointer + reached, steps - 1)
    return states, actions


def simulate_mujoco(name: str, ids: np.ndarray, policy: str, steps: int, seed: int, noise_std: float,
                    image_size: int, shadows: bool | None = None) -> list[dict[str, np.ndarray]]:
    """Reacher or Cube: simulate and render the episodes `ids`. Columns: pixels, action, state (qpos then qvel,
    float64 so that replaying the actions from a stored state reproduces the next ones), proprio and observation
    (the reference environment's state-observation vector). Reacher: proprio = state (joint angles and
    velocities); Cube: proprio = the reference's proprioceptive part of its observation."""
    if name == "reacher":
        from lewm.envs.reacher import render_frames as render
        from lewm.envs.reacher_expert import simulate_reacher

        states, actions, observations = simulate_reacher(ids, policy, steps, seed, noise_std)
        proprios = states.astype(np.float32)
    else:
        from lewm.envs.cube import render_frames
        from lewm.envs.cube_expert import simulate_cube

        states, actions, observations, proprios = simulate_cube(ids, policy, steps, seed, noise_std)
        render = partial(render_frames, shadows=bool(shadows))
    return [{"pixels": render(state, image_size), "action": action, "proprio": proprio, "state": state,
             "observation": observation}
            for state, action, observation, proprio in zip(states, actions, observations, proprios, strict=True)]


def simulate_episodes(name: str, ids: np.ndarray, policy: str, steps: int, seed: int, noise_std: float,
                      image_size: int, shadows: bool | None = None) -> list[dict[str, np.ndarray]]:
    """Simulate and render the episodes `ids` of environment `name`: one dict of columns per episode
    (pixels, action, proprio, state; Reacher and Cube also observation), ready for `EpisodeWriter.add_episode`."""
    if name in MUJOCO_ENVS:
        return simulate_mujoco(name, ids, policy, steps, seed, noise_std, image_size, shadows)
    if name == "pusht":
        states, actions = simulate_pusht(ids, policy, steps, seed, noise_std)
    else:
        states, actions = simulate_two_room(ids, policy, steps, seed, noise_std)
    columns = []
    for state, action in zip(states, actions, strict=True):
        if name == "pusht":
            frames = pusht.render_frames(state, image_size)  # T S S 3
            proprio = state[:, [0, 1, 5, 6]]  # T 4: agent xy, agent velocity
        else:
            frames = render_frames(state, image_size)  # T S S 3
            proprio = state
        columns.append({"pixels": frames, "action": action, "proprio": proprio, "state": state})
    return columns


def _ordered_map(function: Callable[[Any], Any], items: list[Any], workers: int) -> Iterator[Any]:
    """`map(function, items)` in order, over `workers` processes when > 1, with at most 2 x workers results
    in flight (the writer is often the slower side; unbounded results would pile up in memory)."""
    if workers == 1:
        yield from map(function, items)
        return
    with ProcessPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def collect(
    env_name: str,
    policy: str,
    episodes: int,
    out: str | os.PathLike[str],
    steps_per_episode: int = 100,
    image_size: int = 224,
    seed: int = 0,
    noise_std: float | None = None,
    mode: CollectMode = "x",
    num_envs: int = 64,
    progress: bool = True,
    workers: int = 1,
    compression: str | None = None,
    shadows: bool | None = None,
) -> dict[str, Any]:
    """Write `episodes` episodes of `steps_per_episode` frames to `out`; return a summary dict.

    `workers` > 1 simulates and renders in that many processes (the file is the same: each episode has its own
    generator); `compression` ("gzip" or "lzf") compresses each frame (at 224 px gzip stores about 1.1 KB per Push-T
    frame instead of 150 KB). mode "x" refuses an existing file, "w" replaces it, "a" appends `episodes` episodes
    (numbered after the ones already there), "resume" continues an interrupted collection until the file holds
    `episodes` episodes (refused unless the file records the same settings; a missing file is started). Columns:
    pixels (T, S, S, 3) uint8, action (T, A) float32 (NaN on each episode's last row), proprio and state; the writer
    adds episode_idx/step_idx/ep_len/ep_offset. Two-Room: proprio (T, 2) = state (T, 2) = agent xy. Push-T
    (docs/reference.md section 11 order): state (T, 7) = agent xy, block xy, block angle, agent velocity;
    proprio (T, 4) = agent xy, agent velocity. Reacher and Cube: see `simulate_mujoco`. `noise_std` None takes
    `DEFAULT_NOISE` (the weak policy has no noise and ignores it). `shadows` (Cube only; None: True, the
    reference's frames) renders Cube with or without shadows, recorded so that evaluation renders alike.

    The summary has episodes (written by this call), first_episode (the file's count before), rows, seconds,
    episodes_per_second and nontrivial_fraction: the share of 25-step windows (the evaluation's start/goal pairs)
    that are not trivial — Two-Room: start and end more than 16 px apart; Push-T: the block moves more than 20 units
    or turns more than pi/9; Reacher: the start is not within the success tolerance of the end; Cube: the cube
    moves more than 0.04 m — and (not Two-Room) trivial_fraction, the share whose start already passes the
    success test. Both are None when no window fits (or nothing was written).
    """
    settings = collect_settings(env_name, policy, steps_per_episode, image_size, seed, noise_std, compression,
                                shadows)
    episodes = positive_int(WHERE, "episodes", episodes)
    num_envs = positive_int(WHERE, "num_envs", num_envs)
    workers = positive_int(WHERE, "workers", workers)
    check_field(mode in get_args(CollectMode), "mode", mode, "must be 'x', 'w', 'a' or 'resume'", WHERE)
    out = Path(out)
    start_time = time.perf_counter()
    with _open_writer(out, settings, mode) as writer:
        first = writer.num_episodes  # 0 for a new file; the complete episodes already there otherwise
        wanted = episodes if mode == "resume" else first + episodes
        if first > wanted:
            raise LewmError(f"{out}: cannot resume: the file holds {first} episodes, more than episodes = {episodes}")
        states = _write_episodes(writer, settings, range(first, wanted), num_envs, workers, progress)
    return _summary(out, settings, first, states, time.perf_counter() - start_time)


def _summary(out: Path, settings: CollectSettings, first: int, states: list[np.ndarray], seconds: float
             ) -> dict[str, Any]:
    """`collect`'s result: what was written (states: each new episode's (T, S_dim)), how fast, and the window
    shares of the new episodes."""
    return {
        "path": str(out),
        "env": settings.env,
        "policy": settings.policy,
        "episodes": len(states),
        "first_episode": first,
        "rows": len(states) * settings.steps,
        "image_size": settings.image_size,
        "seconds": seconds,
        "episodes_per_second": len(states) / seconds if seconds > 0 else float("inf"),
        "noise_std": settings.noise_std,
        **_window_fractions(settings.env, states),
    }


def _open_writer(out: Path, settings: CollectSettings, mode: CollectMode) -> EpisodeWriter:
    """A writer on `out` itself (atomic=False: each committed batch survives a crash, no temporary file). A new
    file records `settings`; an append that changes them drops the record, which no longer describes the file."""
    if mode == "resume":
        mode = _resume_mode(out, settings)
    if mode != "a":
        return EpisodeWriter(out, mode, settings.compression, atomic=False, attrs=settings.attributes())
    recorded = file_attributes(out) if out.exists() else {}
    writer = EpisodeWriter(out, mode, settings.compression, atomic=False)
    if settings.difference(recorded) is not None:
        try:
            for key in [key for key in writer.attrs if key.startswith(SETTINGS_PREFIX)]:
                del writer.attrs[key]
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    return writer


def _resume_mode(out: Path, settings: CollectSettings) -> Mode:
    """How to reopen `out` to resume it: create it when missing, start over when it holds no complete episode
    (a run killed before its first commit), else append, once the file shows it was collected the same way."""
    if not out.exists():
        return "x"
    if out.stat().st_size == 0:  # killed between creating the file and writing its first bytes
        return "w"
    attrs = file_attributes(out)
    if attrs.get(COMPLETE_KEY) == 0:
        return "w"
    if not any(key.startswith(SETTINGS_PREFIX) for key in attrs):
        raise LewmError(f"{out}: cannot resume: the file records no collect settings (written by another tool, or "
                        "appended to with other settings); append to it instead")
    difference = settings.difference(attrs)
    if difference is not None:
        raise LewmError(f"{out}: cannot resume: the file was collected with {difference}")
    return "a"


def _write_episodes(writer: EpisodeWriter, settings: CollectSettings, ids: range, num_envs: int, workers: int,
                    progress: bool) -> list[np.ndarray]:
    """Simulate the episodes `ids` in batches, add them in order and commit after every batch; return each
    episode's states (T, S_dim) for the summary."""
    # Two-Room simulates num_envs episodes at once (vectorised); the others one episode after another
    size = num_envs if settings.env == "two-room" else min(num_envs, MUJOCO_BATCH)
    batches = [np.arange(begin, min(begin + size, ids.stop)) for begin in range(ids.start, ids.stop, size)]
    task = partial(simulate_episodes, settings.env, policy=settings.policy, steps=settings.steps,
                   seed=settings.seed, noise_std=settings.noise_std, image_size=settings.image_size,
                   shadows=settings.shadows)
    states: list[np.ndarray] = []
    description = f"collect {settings.env}/{settings.policy}"
    with tqdm(total=ids.stop, initial=ids.start, desc=description, unit="ep", disable=not progress) as bar:
        for episodes_data in _ordered_map(task, batches, workers):
            for columns in episodes_data:
                writer.add_episode(**columns)
                states.append(columns["state"])
                bar.update(1)
            writer.commit()
    return states


def _window_fractions(env: str, states: list[np.ndarray]) -> dict[str, float | None]:
    """The summary's window shares over the episodes' states (None for each when there are none)."""
    stacked = np.stack(states) if states else None  # E T S_dim
    if env in MUJOCO_ENVS:
        module = import_module("lewm.envs.reacher_expert" if env == "reacher" else "lewm.envs.cube_expert")
        empty = {"nontrivial_fraction": None, "trivial_fraction": None}
        return empty if stacked is None else module.window_fractions(stacked)
    if env == "two-room":
        return {"nontrivial_fraction": None if stacked is None else nontrivial_fraction(stacked)}
    return {"nontrivial_fraction": None if stacked is None else block_moving_fraction(stacked),
            "trivial_fraction": None if stacked is None else trivial_fraction(stacked)}
