"""MuJoCo for the Reacher and Cube environments: import it with a headless GL backend, or say in one line why not.

MuJoCo picks its OpenGL backend from the environment variable MUJOCO_GL when it is *imported*; with nothing set
it looks for a display and fails on a headless machine. So `import_mujoco` sets MUJOCO_GL=egl (works with the
Mesa libraries most Linux machines have; `osmesa` is the software fallback) before the first import, unless the
user chose a backend, and every failure becomes a LewmError naming the missing piece instead of a traceback.
The optional dependencies are `pip install -e ".[mujoco]"` (mujoco pinned to 3.17.0: 4.0 breaks dm-control).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

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
