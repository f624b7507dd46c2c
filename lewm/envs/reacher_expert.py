"""A scripted Reacher expert and the episode simulator the collector uses.

The reference's Reacher data come from a SAC agent whose checkpoint is not published; this expert produces data
of the same kind (the arm keeps moving between varied joint configurations, so 25-step start/goal windows are
rarely already solved) from the physics alone: a joint-space PD controller drives the torques towards a goal
configuration drawn as dm_control draws episode starts, a new goal follows once every joint is within the
success tolerance of it (or after a timeout), and Gaussian noise of std `noise_std` is added to every action
before clipping to [-1, 1], so that the data also cover the action space away from the controller's choices.

Stepping. Episodes are stepped with `ReacherPhysics.step` without a goal: during collection no goal exists, so
the environment's stop-on-success quirk never applies; every stored step is two full physics steps under the
float32 action as stored. Replaying a file's actions from its first (float64) state with `ReacherPhysics.step`
(or `ReacherEnv.step` whose goal no state reaches) reproduces its states exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lewm.envs.reacher import (
    OBSERVATION_DIM,
    STATE_DIM,
    ReacherPhysics,
    is_success,
    observation_vector,
    sample_states,
    sample_targets,
)
from lewm.errors import LewmError

POLICIES = ("expert", "random")
GOAL_OFFSET = 25
"""Steps between an evaluation start and its goal: the window `window_fractions` measures."""


@dataclass(frozen=True)
class ExpertSettings:
    """Tuning of the PD expert (gains in action units per radian and per rad/s)."""

    kp: tuple[float, float] = (1.5, 2.5)
    """Proportional gain, drawn uniformly per goal so that the arm's speed varies between movements."""
    damping_ratio: float = 0.1
    """Derivative gain = damping_ratio * kp. Larger values oscillate: an action is held for 0.04 s while the
    arm's velocity time constant is shorter, so strong velocity feedback overshoots from step to step."""
    tolerance: float = 0.05
    """A goal counts as reached when every joint is this close (rad): the success test's tolerance."""
    timeout: int = 60
    """Steps after which an unreached goal is abandoned for a new one."""


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Angles mapped to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


class ReacherExpert:
    """A stateful PD expert for one episode; `act(state)` returns the next (2,) float32 action in [-1, 1]."""

    def __init__(self, rng: np.random.Generator, noise_std: float = 0.3, settings: ExpertSettings | None = None):
        self.rng = rng
        self.noise_std = noise_std
        self.settings = settings or ExpertSettings()
        self.reached = 0
        """Goals reached so far (the others were abandoned after `settings.timeout` steps)."""
        self.abandoned = 0
        self._new_goal()

    def _new_goal(self) -> None:
        """Goal angles drawn as dm_control draws starts, and a gain for the movement towards them."""
        self.goal = sample_states(self.rng, 1)[0, :2]
        self.kp = float(self.rng.uniform(*self.settings.kp))
        self.goal_steps = 0

    def error(self, state: np.ndarray) -> np.ndarray:
        """(2,) goal - angles; the shoulder's wrapped (it turns freely, so the short way round), the wrist's
        plain (its range is an interval)."""
        error = self.goal - state[:2]
        error[0] = wrap_angle(error[0])
        return error

    def act(self, state: np.ndarray) -> np.ndarray:
        """(4,) state -> (2,) float32 action: PD torques towards the goal plus noise, clipped."""
        error = self.error(state)
        reached = bool(np.abs(error).max() < self.settings.tolerance)
        if reached or self.goal_steps >= self.settings.timeout:
            self.reached += reached
            self.abandoned += not reached
            self._new_goal()
            error = self.error(state)
        self.goal_steps += 1
        action = self.kp * error - self.settings.damping_ratio * self.kp * state[2:STATE_DIM]
        if self.noise_std > 0:
            action = action + self.noise_std * self.rng.standard_normal(2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def simulate_reacher(episode_ids: np.ndarray, policy: str, steps: int, seed: int,
                     noise_std: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run N episodes of T = `steps` frames: -> states (N, T, 4) float64 (qpos then qvel), actions (N, T, 2)
    float32 (row t is the action taken after frame t; the last row is NaN), observations (N, T, 6) float32 (the
    reference's state observation, for a target point drawn per episode as dm_control draws it).

    policy: "expert" (`ReacherExpert`) or "random" (uniform actions). Each episode draws its start, its target
    point and its actions from its own generator seeded with (seed, episode number), so an episode does not
    depend on the batch it is simulated in. The physics is stepped with the float32 actions as stored.
    """
    if policy not in POLICIES:
        raise LewmError(f"reacher: policy = {policy!r} is invalid: choose one of {', '.join(POLICIES)}")
    count = len(episode_ids)
    states = np.empty((count, steps, STATE_DIM))
    actions = np.full((count, steps, 2), np.nan, dtype=np.float32)
    observations = np.empty((count, steps, OBSERVATION_DIM), dtype=np.float32)
    physics = ReacherPhysics()
    for row, episode in enumerate(episode_ids):
        rng = np.random.default_rng([seed, int(episode)])
        physics.set_state(sample_states(rng, 1)[0])
        target = sample_targets(rng, 1)[0]
        expert = ReacherExpert(rng, noise_std) if policy == "expert" else None
        for t in range(steps):
            states[row, t] = physics.get_state()
            if t == steps - 1:
                break
            if expert is not None:
                action = expert.act(states[row, t])
            else:
                action = rng.uniform(-1.0, 1.0, size=2).astype(np.float32)
            actions[row, t] = action
            physics.step(action.astype(np.float64))  # no goal: two full physics steps, never an early stop
        observations[row] = observation_vector(states[row], target)
    return states, actions, observations


def window_fractions(states: np.ndarray, offset: int = GOAL_OFFSET) -> dict[str, float | None]:
    """Shares of the (t, t + offset) windows of states (E, T, 4) whose start does not / does already pass the
    success test against the end: {"nontrivial_fraction", "trivial_fraction"}, both None when T <= offset."""
    if states.shape[1] <= offset:
        return {"nontrivial_fraction": None, "trivial_fraction": None}
    trivial = float(np.mean(is_success(states[:, :-offset], states[:, offset:])))
    return {"nontrivial_fraction": 1.0 - trivial, "trivial_fraction": trivial}
