"""Collect Two-Room or Push-T episodes into a community-layout HDF5 file (REFERENCE section 4).

Episodes are simulated in batches of `num_envs` (Two-Room: the vectorised `step_positions`; Push-T: pymunk, one
episode after another), rendered with the environment's `render_frames` from the float32 states that are stored
(so a dataset frame equals the environment's frame of that state) and streamed to disk with `EpisodeWriter` one
episode at a time.

Each episode draws its random numbers from its own generator seeded with (seed, episode number), so the file
depends on the seed alone, not on `num_envs`, and appending with the same seed continues the sequence instead
of repeating it. The expert chases a moving target: on arrival (< 16 px) the next target is drawn uniformly
over the free area, so the agent keeps moving and start/goal pairs 25 steps apart are rarely trivially close
(REFERENCE section 6). Push-T also offers "weak", the reference's own collection policy (random actions kept
near the block, `lewm.envs.pusht_weak`).
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np
from tqdm import tqdm

from lewm.data.hdf5 import EpisodeWriter, Mode
from lewm.envs import pusht
from lewm.envs.policies import expert_directions, random_actions
from lewm.envs.pusht_expert import block_motion, simulate_pusht
from lewm.envs.registry import canonical_name
from lewm.envs.two_room import (
    DEFAULT_GEOMETRY,
    TwoRoomGeometry,
    distances,
    render_frames,
    sample_free_positions,
    step_positions,
)
from lewm.errors import LewmError

POLICIES = ("random", "expert", "weak")
"""Collection policies; "weak" (the reference's Push-T WeakPolicy) exists for Push-T only."""
GOAL_OFFSET = 25
"""Steps between an evaluation start and its goal (REFERENCE section 6): the window the summary measures."""
BLOCK_MOTION = 20.0
"""Push-T: a 25-step window counts as moving the block when the block goes further than this (world units,
the success test's position tolerance) or turns more than pi/9 (its angle tolerance)."""
DEFAULT_NOISE = {"two-room": 1.0, "pusht": 0.1}
"""Expert action noise per environment: Two-Room's wide noise covers the action space while crossing rooms;
the Push-T expert must stay on its contact point, so it gets a little."""


def _check_policy(env: str, policy: str) -> None:
    """A LewmError unless `policy` is one of POLICIES and exists for `env` (weak: Push-T only)."""
    if policy not in POLICIES:
        raise LewmError(f"collect: unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")
    if policy == "weak" and env != "pusht":
        raise LewmError(f"collect: policy 'weak' is for pusht only, not {env!r}: use random or expert")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise LewmError(f"collect: {name} = {value!r} is invalid: must be an integer >= 1")
    return int(value)


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


def simulate_episodes(name: str, ids: np.ndarray, policy: str, steps: int, seed: int, noise_std: float,
                      image_size: int) -> list[dict[str, np.ndarray]]:
    """Simulate and render the episodes `ids` of environment `name`: one dict of columns per episode
    (pixels, action, proprio, state), ready for `EpisodeWriter.add_episode`."""
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
    mode: Mode = "x",
    num_envs: int = 64,
    progress: bool = True,
    workers: int = 1,
    compression: str | None = None,
) -> dict[str, Any]:
    """Write `episodes` episodes of `steps_per_episode` frames to `out`; return a summary dict.

    `workers` > 1 simulates and renders in that many processes (the file is the same: each episode has its own
    generator); `compression` ("gzip" or "lzf") compresses each frame (at 224 px gzip stores about 1.1 KB per Push-T
    frame instead of 150 KB). mode "x" refuses an existing file, "w" replaces it, "a" appends to it (episodes
    numbered after the ones already there). Columns: pixels (T, S, S, 3) uint8, action (T, 2) float32 (NaN on each
    episode's last row), proprio and state; the writer adds episode_idx/step_idx/ep_len/ep_offset. Two-Room: proprio
    (T, 2) = state (T, 2) = agent xy. Push-T (REFERENCE 11 order): state (T, 7) = agent xy, block xy, block angle,
    agent velocity; proprio (T, 4) = agent xy, agent velocity. `noise_std` None takes `DEFAULT_NOISE` (the weak
    policy has no noise and ignores it).

    The summary has episodes, rows, seconds, episodes_per_second and nontrivial_fraction: the share of
    25-step windows (the evaluation's start/goal pairs) that are not trivial — Two-Room: start and end more
    than 16 px apart; Push-T: the block moves more than 20 units or turns more than pi/9 — and for Push-T
    trivial_fraction, the share whose start already passes the success test.
    """
    name = canonical_name(env_name)
    _check_policy(name, policy)
    episodes = _positive_int("episodes", episodes)
    steps = _positive_int("steps_per_episode", steps_per_episode)
    image_size = _positive_int("image_size", image_size)
    num_envs = _positive_int("num_envs", num_envs)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LewmError(f"collect: seed = {seed!r} is invalid: must be an integer >= 0")
    noise_std = DEFAULT_NOISE[name] if noise_std is None else noise_std
    if not (isinstance(noise_std, (int, float, np.floating)) and math.isfinite(noise_std) and noise_std >= 0):
        raise LewmError(f"collect: noise_std = {noise_std!r} is invalid: must be a finite number >= 0")

    workers = _positive_int("workers", workers)
    if compression not in (None, "gzip", "lzf"):
        raise LewmError(f"collect: compression = {compression!r} is invalid: use gzip, lzf or none")
    # Two-Room simulates num_envs episodes at once (vectorised); Push-T simulates its episodes one after another
    # (each from a fresh pymunk space), so its batches only group work for the worker processes and stay small
    # (a batch's frames travel between processes at once).
    batch = num_envs if name == "two-room" else min(num_envs, 4)

    start_time = time.perf_counter()
    all_states: list[np.ndarray] = []
    with EpisodeWriter(out, mode=mode, compression=compression) as writer:
        first = writer.num_episodes  # 0 for a new file; the existing count when appending
        batches = [np.arange(first + begin, first + min(begin + batch, episodes))
                   for begin in range(0, episodes, batch)]
        task = partial(simulate_episodes, name, policy=policy, steps=steps, seed=int(seed),
                       noise_std=float(noise_std), image_size=image_size)
        with tqdm(total=episodes, desc=f"collect {name}/{policy}", unit="ep", disable=not progress) as bar:
            for episodes_data in _ordered_map(task, batches, workers):
                for columns in episodes_data:
                    writer.add_episode(**columns)
                    all_states.append(columns["state"])
                    bar.update(1)
        rows = episodes * steps
    seconds = time.perf_counter() - start_time
    states = np.stack(all_states)  # E T S_dim
    windows = {"nontrivial_fraction": nontrivial_fraction(states)} if name == "two-room" else {
        "nontrivial_fraction": block_moving_fraction(states), "trivial_fraction": trivial_fraction(states)}
    return {
        "path": str(out),
        "env": name,
        "policy": policy,
        "episodes": episodes,
        "rows": rows,
        "image_size": image_size,
        "seconds": seconds,
        "episodes_per_second": episodes / seconds if seconds > 0 else float("inf"),
        "noise_std": float(noise_std),
        **windows,
    }
