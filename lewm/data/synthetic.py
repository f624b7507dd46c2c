"""A small synthetic episode file (a dot moved by random actions) for tests, smoke runs and benchmarks.

Real environments live in `lewm.envs`; this generator needs nothing but numpy, renders in milliseconds and has
dynamics a world model can learn: position += step * action, clamped to the canvas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lewm.data.hdf5 import EpisodeWriter


def render_dots(positions: np.ndarray, image_size: int, radius: float = 3.0) -> np.ndarray:
    """(T, 2) positions in [0, 1] -> (T, H, W, 3) uint8 frames: a red Gaussian dot on white."""
    grid = (np.arange(image_size) + 0.5) / image_size  # W
    dy = grid[None, :, None] - positions[:, 1, None, None]  # T H 1
    dx = grid[None, None, :] - positions[:, 0, None, None]  # T 1 W
    sigma = radius / image_size
    alpha = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))  # T H W
    frames = np.ones(alpha.shape + (3,), dtype=np.float32)  # T H W 3
    frames[..., 1] -= alpha
    frames[..., 2] -= alpha
    return (frames * 255).round().astype(np.uint8)


def write_moving_dot_file(
    path: Path,
    num_episodes: int = 16,
    episode_length: int = 40,
    image_size: int = 32,
    step_size: float = 0.04,
    seed: int = 0,
    mode: str = "x",
) -> Path:
    """Write `num_episodes` episodes of a dot moved by smooth random 2-D actions in [-1, 1].

    Columns: pixels (N, H, W, 3) uint8, action (N, 2) float32 with NaN on each episode's last step (as files
    written by other tools have), proprio (N, 2) = position, state (N, 2) = position.
    """
    rng = np.random.default_rng(seed)
    with EpisodeWriter(path, mode=mode) as writer:
        for _ in range(num_episodes):
            position = rng.uniform(0.2, 0.8, size=2)
            action = rng.uniform(-1, 1, size=2)
            positions, actions = [], []
            for _ in range(episode_length):
                positions.append(position.copy())
                action = np.clip(0.8 * action + 0.5 * rng.normal(size=2), -1, 1)
                actions.append(action.copy())
                position = np.clip(position + step_size * action, 0.05, 0.95)
            positions_array = np.asarray(positions, dtype=np.float32)  # T 2
            actions_array = np.asarray(actions, dtype=np.float32)  # T 2
            actions_array[-1] = np.nan  # no action after the last frame
            writer.add_episode(
                pixels=render_dots(positions_array, image_size),
                action=actions_array,
                proprio=positions_array,
                state=positions_array,
            )
    return Path(path)
