"""lewm.envs.mujoco_backend: MuJoCo imported with a headless GL backend, one-line errors otherwise; and
`import lewm.envs` not importing MuJoCo at all (the extra is optional)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lewm.envs.mujoco_backend import DEFAULT_GL, INSTALL_HINT, import_mujoco
from lewm.errors import LewmError


def _run(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_importing_the_envs_package_does_not_import_mujoco() -> None:
    code = ("import sys, lewm.envs, lewm.envs.collect, lewm.evaluation, lewm.analysis.surprise\n"
            "print(sorted(m for m in ('mujoco', 'dm_control', 'ogbench') if m in sys.modules))")
    assert _run(code, dict(os.environ)) == "[]"


def test_the_gl_backend_defaults_to_egl_and_respects_the_users_choice() -> None:
    code = "from lewm.envs.mujoco_backend import gl_backend; print(gl_backend())"
    unset = {key: value for key, value in os.environ.items() if key not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    assert _run(code, unset) == DEFAULT_GL == "egl"
    assert _run(code, {**unset, "MUJOCO_GL": "osmesa"}) == "osmesa"


def test_a_missing_package_is_one_line_naming_it_and_the_extra() -> None:
    with pytest.raises(LewmError) as caught:
        import_mujoco("reacher", "lewm_no_such_module")
    message = str(caught.value)
    assert message == f"reacher: needs 'lewm_no_such_module', which is not installed: {INSTALL_HINT}"
    assert "\n" not in message
