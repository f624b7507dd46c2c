"""Cube episodes for data collection: OGBench's scripted `CubeMarkovOracle` (the reference's "markov_oracle"
expert) or uniform random actions, stepped in `lewm.envs.cube.CubeEnv` without rendering.

How ours corresponds to the reference's `ExpertPolicy(policy_type="markov_oracle")` driving swm/OGBCube-v0 in
data-collection mode (stable_worldmodel/envs/ogbench/expert_policy.py):
- the oracle is ogbench's own class (min_norm 0.4), fed the same info keys (`cube_scene.observation_info`);
- per episode a noise level xi ~ U(0, noise_std) (the reference's action_noise, 0.1 by default), and each action
  gets Gaussian noise of std (xi, xi, xi, 3 xi, 10 xi) before the clip to [-1, 1]; the reference's
  p_random_action is 0, but its draw per step is kept so that the random stream matches its structure;
- when the oracle is done (cube placed and the arm at its random final pose, or 200 oracle steps), the
  reference calls `set_new_target`, which re-reads the target drawn at the reset: the same target again (its
  goal position and yaw are resampled only at a reset), so the oracle then only moves the arm to new final
  poses. `RETARGET_UNIFORM` draws a new uniform target instead (ogbench's own data-collection behaviour); it is
  the default here, because with the reference's rule the cube sits still after its one placement and most
  25-step windows of an episode are trivial (measured: `window_fractions`, reported in the tests);
- the oracle's reset draws its final arm pose from numpy's global generator; ours draws it from the episode's
  generator (`_SeededCubeOracle`), so an episode depends on (seed, episode number) alone.

Shapes: N episodes, T steps, O = 28 observation values, P = 19 proprio values.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from lewm.envs.cube import SUCCESS_DISTANCE, CubeEnv, cube_distance, sample_target
from lewm.envs.cube_scene import (
    ARM_SAMPLING_BOUNDS,
    CUBE_QPOS,
    OBSERVATION_DIM,
    PROPRIO_DIM,
    STATE_DIM,
)
from lewm.envs.mujoco_backend import import_mujoco
from lewm.errors import LewmError

GOAL_OFFSET = 25
"""Steps between an evaluation start and its goal: the window `window_fractions` measures."""
ORACLE_MIN_NORM = 0.4
"""The reference's `min_norm` for the Markov oracle."""
NOISE_SCALE = np.array([1.0, 1.0, 1.0, 3.0, 10.0])
"""Per-dimension multiples of the episode's noise level xi (x, y, z, yaw, gripper), as the reference."""
P_RANDOM_ACTION = 0.0
"""The reference's probability of a uniform random action instead of the oracle's (0 by default)."""
Retarget = Literal["uniform", "reference"]
RETARGET_UNIFORM: Retarget = "uniform"
"""New uniform target whenever the oracle is done (ogbench's data collection): the cube keeps moving."""
RETARGET_REFERENCE: Retarget = "reference"
"""The reference's rule: the same target again (drawn once per episode, at the reset)."""


def _oracle_class() -> type:
    """A `CubeMarkovOracle` whose reset draws the final arm pose from a given generator (the original uses
    numpy's global one); otherwise ogbench's oracle unchanged."""
    markov = import_mujoco("cube", "ogbench.manipspace.oracles.markov.cube_markov")

    class SeededCubeOracle(markov.CubeMarkovOracle):
        def __init__(self, rng: np.random.Generator, env: Any):
            super().__init__(env=env, min_norm=ORACLE_MIN_NORM)
            self._rng = rng

        def reset(self, ob: Any, info: Any) -> None:
            self._done = False
            self._step = 0
            self._max_step = 200  # the original's reset sets this too, whatever its constructor got
            self._final_pos = self._rng.uniform(*ARM_SAMPLING_BOUNDS)
            self._final_yaw = self._rng.uniform(-np.pi, np.pi)

    return SeededCubeOracle


def _expert_episode(env: CubeEnv, rng: np.random.Generator, steps: int, noise_std: float, retarget: Retarget,
                    out: tuple[np.ndarray, ...]) -> None:
    """Fill one episode's rows of (states, actions, observations) with the oracle driving `env` from its reset."""
    states, actions, observations = out
    info = env.start_episode(rng)
    xi = rng.uniform(0.0, noise_std)
    oracle = _oracle_class()(rng, env)
    oracle.reset(None, info)
    for t in range(steps):
        states[t], observations[t] = info["state"], info["observation"]
        if t == steps - 1:
            break
        if rng.uniform(0.0, 1.0) < P_RANDOM_ACTION:
            action = rng.uniform(-1.0, 1.0, size=5)
        else:
            action = np.asarray(oracle.select_action(None, info)) + rng.normal(0.0, xi * NOISE_SCALE)
        actions[t] = np.clip(action, -1.0, 1.0)
        env.advance(actions[t])
        info = env.current_info()
        if oracle.done:
            if retarget == RETARGET_UNIFORM:
                env.set_target(*sample_target(rng))
            oracle.reset(None, info)


def _random_episode(env: CubeEnv, rng: np.random.Generator, steps: int, out: tuple[np.ndarray, ...]) -> None:
    """Fill one episode's rows with uniform random actions from its reset."""
    states, actions, observations = out
    info = env.start_episode(rng)
    for t in range(steps):
        states[t], observations[t] = info["state"], info["observation"]
        if t == steps - 1:
            break
        actions[t] = rng.uniform(-1.0, 1.0, size=5)
        env.advance(actions[t])
        info = env.current_info()


def simulate_cube(episode_ids: np.ndarray, policy: str, steps: int, seed: int, noise_std: float,
                  retarget: Retarget = RETARGET_UNIFORM) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run N episodes of T = `steps` frames -> states (N, T, 41) float64, actions (N, T, 5) float32 (last row
    NaN: no action follows the last frame), observations (N, T, 28) float32, proprio (N, T, 19) float32.

    policy "expert" (the oracle, module docstring; `noise_std` is the upper bound of the per-episode noise
    level) or "random" (uniform actions). Each episode draws its reset and actions from its own generator seeded
    with (seed, episode number). The environment is stepped with the float32 actions as stored, so replaying a
    file's actions with `CubeEnv.step` from its first state reproduces its states; there is no early stop.
    Observations are the reference's state-mode vectors as the environment reports them after each step.
    """
    if policy not in ("expert", "random"):
        raise LewmError(f"cube: policy = {policy!r} is invalid: use 'expert' or 'random'")
    if retarget not in (RETARGET_UNIFORM, RETARGET_REFERENCE):
        raise LewmError(f"cube: retarget = {retarget!r} is invalid: use 'uniform' or 'reference'")
    n = len(episode_ids)
    states = np.empty((n, steps, STATE_DIM))
    actions = np.full((n, steps, 5), np.nan, dtype=np.float32)
    observations = np.empty((n, steps, OBSERVATION_DIM), dtype=np.float32)
    env = CubeEnv(image_size=8, max_episode_steps=max(steps, 1), render_mode=None)
    for row, episode in enumerate(episode_ids):
        rng = np.random.default_rng([seed, int(episode)])
        out = (states[row], actions[row], observations[row])
        if policy == "expert":
            _expert_episode(env, rng, steps, noise_std, retarget, out)
        else:
            _random_episode(env, rng, steps, out)
    return states, actions, observations, observations[..., :PROPRIO_DIM].copy()


def window_fractions(states: np.ndarray, offset: int = GOAL_OFFSET) -> dict[str, float | None]:
    """Shares of the (t, t + offset) windows of states (E, T, 41): "nontrivial_fraction", those in which the
    cube moves more than 0.04 m, and "trivial_fraction", those whose start already passes the success test for
    the end (the cube within 0.04 m of where it ends). Both None when T <= offset."""
    if states.shape[1] <= offset:
        return {"nontrivial_fraction": None, "trivial_fraction": None}
    moved = np.linalg.norm(states[:, offset:, CUBE_QPOS] - states[:, :-offset, CUBE_QPOS], axis=-1)  # E T-offset
    trivial = cube_distance(states[:, :-offset], states[:, offset:]) <= SUCCESS_DISTANCE  # E T-offset
    return {"nontrivial_fraction": float(np.mean(moved > SUCCESS_DISTANCE)),
            "trivial_fraction": float(np.mean(trivial))}
