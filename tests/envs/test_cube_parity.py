"""lewm's Cube steps exactly as stable-worldmodel 0.1.1's swm/OGBCube-v0 (ogbench's single-cube scene).

Both are stepped side by side (comparison code in `tests/envs/reference_mujoco.py`, under "Cube", so a script can
print the same numbers) from reset states, from mid-episode states reached with ogbench's oracle and from states
imposed on both, with random actions. On this machine they agree to the last bit: states, observations, the
oracle's inputs and success flags, and frames of the same kinematics. The bounds leave room for rounding only,
well under the brief's 1e-5 m / 1e-6 rad; refreshing the stale pinch pose (one missed quirk) moves the joints by
tenths of a radian and fails them.

Frames: after a step the reference draws the bodies as the last substep began (2 ms earlier) while lewm draws a
state's own kinematics (so an environment frame equals a dataset frame of its state); the frame of the same
kinematics must be byte-identical, and the share of pixels the 2 ms shift changes is printed and bounded loosely
(a wrong camera, colour or light changes nearly all of them).
"""

from __future__ import annotations

import warnings
from types import ModuleType

import pytest

POSITION_TOLERANCE = 1e-5  # m
ANGLE_TOLERANCE = 1e-6  # rad
STALE_PIXELS = 0.3
"""Largest share of 32 px frame pixels the reference's one-substep-stale drawing may change (measured up to 0.15
with random full-speed actions)."""


@pytest.fixture(scope="module")
def reference(env_helper) -> tuple[ModuleType, type]:
    """(helper module, the reference's ogbench CubeEnv class), or a skip naming what is missing."""
    helper = env_helper("reference_mujoco.py")
    try:
        cube_env = helper.load_cube_reference()
    except ImportError as error:
        pytest.skip(f"reference Cube environment unavailable: {error}")
    return helper, cube_env


def test_cube_scene_is_the_reference_scene(reference) -> None:
    helper, cube_env = reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gymnasium's casting warnings from the reference
        env = helper.make_cube_reference(cube_env, 16)
        env.reset(seed=0)
    same_xml, largest = helper.cube_model_difference(env)
    assert same_xml
    assert largest == 0.0


@pytest.mark.slow
def test_cube_matches_reference(reference) -> None:
    helper, cube_env = reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        deviation = helper.compare_cube(cube_env, rollouts=6, steps=(30, 50), seed=1, frame_size=32)
    print(deviation.report("cube"))
    values, mismatches = deviation.values, deviation.mismatches
    assert deviation.rollouts == 6 and deviation.steps > 6 * 30
    assert values["cube_position"] <= POSITION_TOLERANCE
    assert values["joint_angles"] <= ANGLE_TOLERANCE
    assert values["velocities"] <= 1e-4
    assert values["observation"] <= 1e-5 and values["oracle_inputs"] <= 1e-6
    assert mismatches["success"] == 0 and mismatches["successes"] > 0
    assert values["frame"] == 0
    assert 0 < values["frame_stale_pixels"] <= STALE_PIXELS
    assert values["model"] == 0 and mismatches["xml_differs"] == 0


@pytest.mark.slow
def test_comparison_detects_a_missed_quirk(reference, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: starting the relative action from a fresh pinch pose (instead of the one-substep-stale one
    the reference uses) is caught."""
    helper, cube_env = reference
    from lewm.envs import cube
    from lewm.envs.mujoco_backend import import_mujoco

    mujoco, original = import_mujoco("cube"), cube.apply_control

    def fresh_pose(scene, data, action) -> None:
        mujoco.mj_kinematics(scene.model, data)
        original(scene, data, action)

    monkeypatch.setattr(cube, "apply_control", fresh_pose)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        deviation = helper.compare_cube(cube_env, rollouts=2, steps=(30, 30), seed=1, frames=False)
    print(deviation.report("cube, fresh pinch pose"))
    assert deviation.values["joint_angles"] > 1e-3
