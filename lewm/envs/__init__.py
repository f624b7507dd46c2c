"""Environments (gymnasium) and their vectorised numpy cores, policies and the episode collector.

Only the layers above (evaluation, analysis, cli) import this package; model, objectives and data never do.
"""

from lewm.envs.mujoco_backend import gl_backend
from lewm.envs.registry import ENV_NAMES, make
from lewm.envs.two_room import TwoRoomEnv, TwoRoomGeometry, render_frames, step_positions

gl_backend()  # MUJOCO_GL=egl unless the user chose one: MuJoCo reads it once, when something first imports it

__all__ = ["ENV_NAMES", "TwoRoomEnv", "TwoRoomGeometry", "make", "render_frames", "step_positions"]
