"""Fixtures of the environment tests: the side-by-side helpers (tests/envs/reference*.py) loaded as modules."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


def _load(file: str) -> ModuleType:
    """tests/envs/FILE as a module, once per process (tests are not a package: pytest runs with
    --import-mode=importlib, so the helpers cannot be imported by name)."""
    name = f"lewm_tests_env_{Path(file).stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(file))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def env_helper() -> Callable[[str], ModuleType]:
    """load(file) -> the helper module tests/envs/FILE (reference.py, reference_mujoco.py)."""
    return _load
