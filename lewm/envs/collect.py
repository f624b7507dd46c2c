"""Collect Two-Room episodes into a community-layout HDF5 file (REFERENCE section 4), many episodes at once.

Episodes are simulated in batches of `num_envs` with the vectorised `step_positions`, rendered with
`render_frames` from the float32 states that are stored (so a dataset frame equals the environment's frame of
that state) and streamed to disk with `EpisodeWriter` one episode at a time.

Each episode draws its random numbers from its own generator seeded with (seed, episode number), so the file
depends on the seed alone, not on `num_envs`, and appending with the same seed continues the sequence instead
of repeating it. The expert chases a moving target: on arrival (< 16 px) the next target is drawn uniformly
over the free area, so the agent keeps moving and start/goal pairs 25 steps apart are rarely trivially close
(REFERENCE section 6).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from lewm.data.hdf5 import EpisodeWriter, Mode
from lewm.envs.policies import expert_directions, random_actions
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

POLICIES = ("random", "expert")
GOAL_OFFSET = 25
"""Steps between an evaluation start and its goal (REFERENCE section 6): the window the summary measures."""


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


def collect(
    env_name: str,
    policy: str,
    episodes: int,
    out: str | os.PathLike[str],
    steps_per_episode: int = 100,
    image_size: int = 224,
    seed: int = 0,
    noise_std: float = 1.0,
    mode: Mode = "x",
    num_envs: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """Write `episodes` episodes of `steps_per_episode` frames to `out`; return a summary dict.

    mode "x" refuses an existing file, "w" replaces it, "a" appends to it (episodes numbered after the ones
    already there). Columns: pixels (T, S, S, 3) uint8, action (T, 2) float32 (NaN on each episode's last
    row), proprio (T, 2) and state (T, 2) = agent xy; the writer adds episode_idx/step_idx/ep_len/ep_offset.
    The summary has episodes, rows, seconds, episodes_per_second and nontrivial_fraction: the share of
    25-step windows whose start and end states are more than 16 px apart (the evaluation's start/goal pairs).
    """
    name = canonical_name(env_name)
    if policy not in POLICIES:
        raise LewmError(f"collect: unknown policy {policy!r}: choose one of {', '.join(POLICIES)}")
    episodes = _positive_int("episodes", episodes)
    steps = _positive_int("steps_per_episode", steps_per_episode)
    image_size = _positive_int("image_size", image_size)
    num_envs = _positive_int("num_envs", num_envs)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LewmError(f"collect: seed = {seed!r} is invalid: must be an integer >= 0")
    if not (isinstance(noise_std, (int, float, np.floating)) and math.isfinite(noise_std) and noise_std >= 0):
        raise LewmError(f"collect: noise_std = {noise_std!r} is invalid: must be a finite number >= 0")
    geometry = DEFAULT_GEOMETRY

    start_time = time.perf_counter()
    all_states: list[np.ndarray] = []
    with EpisodeWriter(out, mode=mode) as writer:
        first = writer.num_episodes  # 0 for a new file; the existing count when appending
        with tqdm(total=episodes, desc=f"collect {name}/{policy}", unit="ep", disable=not progress) as bar:
            for begin in range(0, episodes, num_envs):
                ids = np.arange(first + begin, first + min(begin + num_envs, episodes))
                states, actions = simulate_two_room(ids, policy, steps, int(seed), float(noise_std), geometry)
                for state, action in zip(states, actions, strict=True):
                    frames = render_frames(state, image_size, geometry=geometry)  # T S S 3
                    writer.add_episode(pixels=frames, action=action, proprio=state, state=state)
                    bar.update(1)
                all_states.append(states)
        rows = episodes * steps
    seconds = time.perf_counter() - start_time
    return {
        "path": str(out),
        "env": name,
        "policy": policy,
        "episodes": episodes,
        "rows": rows,
        "image_size": image_size,
        "seconds": seconds,
        "episodes_per_second": episodes / seconds if seconds > 0 else float("inf"),
        "nontrivial_fraction": nontrivial_fraction(np.concatenate(all_states)),
    }
