"""MuJoCo for the Reacher and Cube environments: import it with a headless GL backend, or say in one line why not.

MuJoCo picks its OpenGL backend from the environment variable MUJOCO_GL when it is *imported*; with nothing set
it looks for a display and fails on a headless machine. So `import_mujoco` sets MUJOCO_GL=egl (works with the
Mesa libraries most Linux machines have; `osmesa` is the software fallback) before the first import, unless the
user chose a backend, and every failure becomes a LewmError naming the missing piece instead of a traceback.
The optional dependencies are `pip install -e ".[mujoco]"` (mujoco pinned to 3.17.0: 4.0 breaks dm-control).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
from collections.abc import Callable, Hashable
from types import ModuleType
from typing import Any

import numpy as np

from lewm.errors import LewmError, first_line

DEFAULT_GL = "egl"
"""The backend lewm sets when the user has not set MUJOCO_GL."""
INSTALL_HINT = 'pip install -e ".[mujoco]"'
"""How to install the optional MuJoCo dependencies (mujoco, dm-control, ogbench)."""


def gl_backend() -> str:
    """The MuJoCo GL backend in use: the user's MUJOCO_GL, else lewm's default (set here, before any import)."""
    os.environ.setdefault("MUJOCO_GL", DEFAULT_GL)
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])  # PyOpenGL must agree with MuJoCo
    return os.environ["MUJOCO_GL"]


def import_mujoco(env: str, module: str = "mujoco") -> ModuleType:
    """Import `module` (mujoco, or dm_control.* / ogbench.*) for environment `env` with a headless GL backend;
    a missing package or a failing backend is one LewmError line naming it."""
    backend = gl_backend()
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = error.name or module
        raise LewmError(f"{env}: needs {missing!r}, which is not installed: {INSTALL_HINT}") from error
    except Exception as error:  # noqa: BLE001 - GL set-up errors come in many types (AttributeError, OSError ...)
        raise LewmError(f"{env}: importing {module} with MUJOCO_GL={backend} failed ({first_line(error)}); set "
                        "MUJOCO_GL=osmesa (apt-get install libosmesa6) or egl") from error


def make_renderer(env: str, model: Any, height: int, width: int) -> Any:
    """A `mujoco.Renderer` of `height` x `width` pixels for `model`, or one LewmError line when the GL backend
    cannot create a context (MUJOCO_GL names the backend tried)."""
    mujoco = import_mujoco(env)
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as error:  # noqa: BLE001 - context creation fails with backend-specific errors
        raise LewmError(f"{env}: cannot render with MUJOCO_GL={gl_backend()} ({first_line(error)}); try "
                        "MUJOCO_GL=osmesa (apt-get install libosmesa6) or egl") from error


class StateRenderer:
    """A model, a rendering-only MjData and a `mujoco.Renderer`: frames of given states from one camera, without
    touching any environment's physics (so a dataset frame and an environment frame of a state are equal)."""

    def __init__(self, env: str, model: Any, size: int, camera: int | str):
        self.mujoco = import_mujoco(env)
        self.model = model
        self.model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), size)  # any size renders
        self.model.vis.global_.offheight = max(int(model.vis.global_.offheight), size)
        self.data = self.mujoco.MjData(model)
        self.camera = camera
        self.renderer = make_renderer(env, model, size, size)

    def render(self, qpos: np.ndarray, qvel: np.ndarray | float, out: np.ndarray) -> None:
        """Draw the state (qpos, qvel) into `out` (S, S, 3) uint8: mj_forward places the bodies first."""
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        self.mujoco.mj_forward(self.model, self.data)
        self.renderer.update_scene(self.data, camera=self.camera)
        self.renderer.render(out=out)

    def close(self) -> None:
        """Free the GL resources with this renderer's own context current: `mujoco.Renderer.close` frees them in
        whichever GL context is current, which deletes *another* renderer's framebuffers when that one rendered
        last (its frames then come out as noise)."""
        gl_context = getattr(self.renderer, "_gl_context", None)
        if gl_context is not None:
            gl_context.make_current()
        self.renderer.close()


_RENDERERS: dict[Hashable, StateRenderer] = {}
"""Every renderer of the process, by key. Never evicted (a process uses few sizes), and closed at exit in
reverse order of creation, each with its own context current (`StateRenderer.close`)."""


def cached_renderer(key: Hashable, build: Callable[[], StateRenderer]) -> StateRenderer:
    """The process's renderer for `key`, built on first use: creating a GL context and uploading textures costs
    far more than a frame, and rendering dominates the cost of collecting data."""
    if key not in _RENDERERS:
        _RENDERERS[key] = build()
        if len(_RENDERERS) == 1:
            # Registered after the first GL context exists, hence after MuJoCo's EGL registers eglTerminate: atexit
            # runs the last registered first, so the contexts are freed while the display is alive (freed by the
            # garbage collector after eglTerminate, each would print an EGL error at exit).
            atexit.register(close_renderers)
    return _RENDERERS[key]


def close_renderers() -> None:
    """Close every cached renderer (at exit; also safe to call earlier: later frames build new ones)."""
    while _RENDERERS:
        _, renderer = _RENDERERS.popitem()  # the newest first
        with contextlib.suppress(Exception):  # at interpreter exit the GL library may already be gone
            renderer.close()
