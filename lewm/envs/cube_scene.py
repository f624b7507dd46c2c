"""The OGBench single-cube scene (UR5e arm, Robotiq 2F-85 gripper, one 4 cm cube) as stable-worldmodel 0.1.1's
swm/OGBCube-v0 builds it, and its end-effector controller: the MuJoCo side of `lewm.envs.cube`.

The scene is assembled from ogbench's own description files (ogbench/manipspace/descriptions) with dm-control's
MJCF library and compiled once per process (`load_scene`); every environment makes its own MjData from the shared
model and never changes the model. The inverse kinematics is ogbench's `DiffIKController` on the bare UR5e, and
poses use ogbench's `lie` module, so the control arithmetic is the reference's operation for operation.

Reference settings reproduced (`tests/envs/test_cube_parity.py` checks the compiled XML and the stepped states):
- The reset-time edits of the reference's `modify_mjcf_model`: the floor's checker colours, the gripper's black
  and pad materials turned purple, the cube's half-size written as float32(0.02) = 0.019999999552965164 (not 0.02,
  so the contact geometry differs from ogbench's by 4e-10 m) and the main light's diffuse as float32(0.7).
- Arm PD gains kp = (4500, 4500, 4500, 2000, 2000, 500) written to gainprm[:, 0] and biasprm[:, 1]; the damping
  the reference writes to gainprm[:, 2] has no effect (the actuators' gain type is "fixed"), so the damping in
  force is the description's biasprm[:, 2]. Kept as is: it is what the reference simulates.
- 25 physics steps of 2 ms per control step; the relative action starts from the pinch site's pose as MuJoCo left
  it after the previous `mj_step` (computed at the start of the last substep: one substep stale), and the gripper
  command is 255 x clip(opening + a4, 0, 1) with the opening read from the current qpos.

Shapes: the state is qpos (21) then qvel (20): arm joints 0-5, gripper joints 6-13, cube xyz 14-16 and
quaternion (w, x, y, z) 17-20; qvel has the cube's 6-D free-joint velocity at 14-19.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lewm.envs.mujoco_backend import import_mujoco
from lewm.errors import LewmError

ENV = "cube"
NQ, NV = 21, 20
STATE_DIM = NQ + NV
CUBE_QPOS = slice(14, 17)
"""Where the cube's xyz lives in a state (and in qpos)."""
CUBE_QUAT = slice(17, 21)
"""The cube's orientation quaternion (w, x, y, z) in a state."""
ARM_QPOS = slice(0, 6)
SUBSTEPS = 25
PHYSICS_TIMESTEP = 0.002
ACTION_RANGE = np.array([0.05, 0.05, 0.05, 0.3, 1.0])
"""A unit action moves the target 5 cm in x, y, z, turns it 0.3 rad and opens/closes the gripper fully."""
HOME_QPOS = np.array([-np.pi / 2, -np.pi / 2, np.pi / 2, -np.pi / 2, -np.pi / 2, 0.0])
WORKSPACE_BOUNDS = np.array([[0.25, -0.35, 0.02], [0.6, 0.35, 0.35]])
"""The end-effector target is clipped into this box (m)."""
ARM_SAMPLING_BOUNDS = np.array([[0.25, -0.35, 0.20], [0.6, 0.35, 0.35]])
OBJECT_SAMPLING_BOUNDS = np.array([[0.3, -0.3], [0.55, 0.3]])
TARGET_SAMPLING_BOUNDS = np.array([[0.3, -0.3], [0.55, 0.3]])
ARM_START = np.mean(ARM_SAMPLING_BOUNDS, axis=0)
"""(0.425, 0, 0.275): the reference resets the pinch site here (its arm start is not varied by default), with a
random yaw."""
CUBE_Z = 0.02
"""Height of a cube resting on the floor (its half-size)."""
ARM_KP = np.array([4500.0, 4500.0, 4500.0, 2000.0, 2000.0, 500.0])
ARM_KD = np.array([450.0, 450.0, 450.0, 200.0, 200.0, 50.0])
FLOOR_COLORS = (np.array([0.08, 0.11, 0.16]), np.array([0.15, 0.18, 0.25]))
ARM_COLOR = np.array([0.61, 0.28, 0.82])
"""Purple: the reference's default agent colour, given to the gripper's black and pad materials."""
CUBE_RGBA = (0.96, 0.26, 0.33, 1.0)
"""Red: the reference's first cube colour."""
LIGHT_DIFFUSE = 0.7
CAMERAS = {  # name -> (pos, xyaxes), in the reference's order
    "front": ((1.287, 0.0, 0.509), (0.0, 1.0, 0.0, -0.342, 0.0, 0.940)),
    "front_pixels": ((1.053, -0.014, 0.639), (0.0, 1.0, 0.0, -0.628, 0.001, 0.778)),
    "side_pixels": ((0.414, -0.753, 0.639), (1.0, 0.0, 0.0, -0.001, 0.628, 0.778)),
    "side": ((1.287, 0.0, 0.509), (1.0, 0.0, 0.0, -0.001, 0.628, 0.778)),
}
PIXEL_CAMERA = "front_pixels"
"""The camera the reference renders for pixels (its `render` default)."""
XYZ_CENTER = np.array([0.425, 0.0, 0.0])
XYZ_SCALE = 10.0
GRIPPER_SCALE = 3.0
PROPRIO_DIM = 19
"""joint angles 6, joint velocities 6, effector xyz 3, cos/sin yaw 2, gripper opening 1, gripper contact 1."""
OBSERVATION_DIM = 28
"""proprio 19, then the cube: xyz 3, quaternion 4, cos/sin yaw 2."""


def descriptions_dir() -> Path:
    """ogbench's scene description folder (XML and meshes)."""
    manipspace = import_mujoco(ENV, "ogbench.manipspace")
    return Path(manipspace.__file__).resolve().parent / "descriptions"


def _add_cube(arena: Any, mjcf: Any, folder: Path) -> None:
    """The cube defaults, the cube and its (mocap) target body, then the cameras, as the reference adds them."""
    arena.include_copy(mjcf.from_path((folder / "cube_outer.xml").as_posix()))
    arena.include_copy(mjcf.from_path((folder / "cube_inner.xml").as_posix()))
    for name, (pos, xyaxes) in CAMERAS.items():
        arena.worldbody.add("camera", name=name, pos=pos, xyaxes=xyaxes)


def _add_bounds(arena: Any) -> None:
    """The two invisible (group 4) boxes ogbench adds to show the sampling bounds: no physics, no pixels, but
    they are part of the reference's model."""
    for name, low, high, rgba in (
            ("object_bounds", np.array([*TARGET_SAMPLING_BOUNDS[0], CUBE_Z]),
             np.array([*TARGET_SAMPLING_BOUNDS[1], CUBE_Z]), (0.6, 0.3, 0.3, 0.2)),
            ("arm_bounds", ARM_SAMPLING_BOUNDS[0], ARM_SAMPLING_BOUNDS[1], (0.3, 0.6, 0.3, 0.2))):
        arena.worldbody.add("site", type="box", pos=(low + high) / 2, size=(high - low) / 2 + 1e-7, rgba=rgba,
                            group=4, name=name)


def _apply_reference_edits(arena: Any) -> None:
    """The reference's reset-time model edits with its default variation values (see the module docstring)."""
    grid = arena.find("texture", "grid")
    grid.rgb1, grid.rgb2 = FLOOR_COLORS
    for material in ("ur5e/robotiq/black", "ur5e/robotiq/pad_gray"):
        arena.find("material", material).rgba[:3] = ARM_COLOR
    half = np.full(3, 0.02, dtype=np.float32)  # reference quirk: a float32 half-size, 0.019999999552965164
    for body in ("object_0", "object_target_0"):
        for geom in arena.find("body", body).find_all("geom"):
            geom.size = half
    arena.find("light", "global").diffuse = np.full(3, LIGHT_DIFFUSE, dtype=np.float32)  # float32, as reference


@lru_cache(maxsize=1)
def scene_xml() -> tuple[str, dict[str, bytes]]:
    """(XML, assets) of the single-cube scene; the XML equals the reference's (the parity test compares them)."""
    mjcf = import_mujoco(ENV, "dm_control.mjcf")
    utils = import_mujoco(ENV, "ogbench.manipspace.mjcf_utils")
    folder = descriptions_dir()
    arena = mjcf.from_path((folder / "floor_wall.xml").as_posix())
    arena.model = "ur5e_arena"
    arena.statistic.center = (0.3, 0, 0.15)
    arena.statistic.extent = 0.7
    arena.statistic.meansize = 0.04
    view = getattr(arena.visual, "global")
    view.elevation, view.azimuth = -20, 180
    arena.visual.map.znear, arena.visual.map.zfar = 0.1, 10.0
    arm = mjcf.from_path(folder / "universal_robots_ur5e" / "ur5e.xml", escape_separators=True)
    arm.model = "ur5e"
    for light in arm.find_all("light"):
        light.remove()
    gripper = mjcf.from_path(folder / "robotiq_2f85" / "2f85.xml", escape_separators=True)
    gripper.model = "robotiq"
    utils.attach(arm, gripper, "attachment_site")
    utils.attach(arena, arm)
    _add_cube(arena, mjcf, folder)
    _add_bounds(arena)
    _apply_reference_edits(arena)
    return utils.to_string(arena), utils.get_assets(arena)


@dataclass(frozen=True)
class CubeScene:
    """The compiled model, the IK controller and the ids the controller and the observations use."""

    model: Any
    ik: Any
    pinch_site: int
    gripper_joint: int
    """The right driver joint: its angle / 0.8 is the gripper opening."""
    gripper_actuator: int
    right_pad_body: int
    target_mocap: int
    cube_geom: int
    target_geom: int
    pinch_to_attach: Any
    """SE3 of the arm's attachment site in the pinch site's frame, the arm at qpos0 (as the reference)."""
    down: Any
    """SO3 of the pinch site pointing down (yaw 0)."""


def _ik_controller() -> Any:
    """ogbench's differential IK on the bare UR5e (attachment site), with the reference's settings (the
    controller's defaults: damping 1e-12, at most 45 degrees per iteration; `solve`: 20 iterations, 1e-4)."""
    mujoco = import_mujoco(ENV)
    mjcf = import_mujoco(ENV, "dm_control.mjcf")
    utils = import_mujoco(ENV, "ogbench.manipspace.mjcf_utils")
    controllers = import_mujoco(ENV, "ogbench.manipspace.controllers")
    arm = mjcf.from_path(descriptions_dir() / "universal_robots_ur5e" / "ur5e.xml", escape_separators=True)
    model = mujoco.MjModel.from_xml_string(utils.to_string(arm), utils.get_assets(arm))
    return controllers.DiffIKController(model=model, sites=["attachment_site"])


def compile_scene_model() -> Any:
    """A fresh MjModel of the scene with the reference's timestep, arm gains and target colour (the cube's,
    alpha 0)."""
    mujoco = import_mujoco(ENV)
    xml, assets = scene_xml()
    model = mujoco.MjModel.from_xml_string(xml, assets)
    model.opt.timestep = PHYSICS_TIMESTEP
    arm = np.arange(6)  # the arm's actuators come first, in joint order
    model.actuator_gainprm[arm, 0] = ARM_KP
    model.actuator_gainprm[arm, 2] = -ARM_KD  # reference quirk: no effect with the "fixed" gain type
    model.actuator_biasprm[arm, 1] = -ARM_KP
    target = model.geom("target_object_0").id  # invisible, as the reference's visualize_info=False leaves it
    model.geom_rgba[target] = (*CUBE_RGBA[:3], 0.0)
    return model


@lru_cache(maxsize=1)
def load_scene() -> CubeScene:
    """The process's one compiled scene (compiled once: the reference recompiles on every reset, which costs
    about 0.3 s and changes nothing)."""
    mujoco = import_mujoco(ENV)
    lie = import_mujoco(ENV, "ogbench.manipspace.lie")
    model = compile_scene_model()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    if model.nq != NQ or model.nv != NV or model.jnt_qposadr[model.joint("object_joint_0").id] != CUBE_QPOS.start:
        raise LewmError(f"cube: ogbench's scene has nq {model.nq}, nv {model.nv}, not the {NQ}, {NV} lewm expects: "
                        "install ogbench==1.2.2")
    pinch, attach = model.site("ur5e/robotiq/pinch").id, model.site("ur5e/attachment_site").id

    def pose(site: int) -> Any:
        rotation = lie.SO3.from_matrix(data.site_xmat[site].reshape(3, 3))  # 9 -> 3 3
        return lie.SE3.from_rotation_and_translation(rotation=rotation, translation=data.site_xpos[site])

    return CubeScene(
        model=model, ik=_ik_controller(), pinch_site=pinch,
        gripper_joint=model.joint("ur5e/robotiq/right_driver_joint").id,
        gripper_actuator=model.actuator("ur5e/robotiq/fingers_actuator").id,
        right_pad_body=model.body("ur5e/robotiq/right_pad").id,
        target_mocap=int(model.body("object_target_0").mocapid[0]),
        cube_geom=model.geom("object_0").id, target_geom=model.geom("target_object_0").id,
        pinch_to_attach=pose(pinch).inverse() @ pose(attach),
        down=lie.SO3(np.asarray([0.0, 1.0, 0.0, 0.0])),
    )


def yaw_of(wxyz: np.ndarray) -> float:
    """Yaw (rad) of a (w, x, y, z) quaternion, as ogbench computes it."""
    lie = import_mujoco(ENV, "ogbench.manipspace.lie")
    return float(lie.SO3(wxyz=np.asarray(wxyz, dtype=np.float64)).compute_yaw_radians())


def z_rotation(yaw: float) -> np.ndarray:
    """(4,) quaternion (w, x, y, z) of a rotation by `yaw` about z, as ogbench computes it."""
    lie = import_mujoco(ENV, "ogbench.manipspace.lie")
    return np.array(lie.SO3.from_z_radians(yaw).wxyz, dtype=np.float64)


def _solve_arm(scene: CubeScene, rotation: Any, position: np.ndarray, start: np.ndarray) -> np.ndarray:
    """(6,) joint angles that put the pinch site at (rotation, position), by IK from `start`."""
    lie = import_mujoco(ENV, "ogbench.manipspace.lie")
    attach = lie.SE3.from_rotation_and_translation(rotation=rotation, translation=position) @ scene.pinch_to_attach
    return scene.ik.solve(pos=attach.translation(), quat=attach.rotation().wxyz, curr_qpos=start)


def arm_start_qpos(scene: CubeScene, yaw: float) -> np.ndarray:
    """(6,) arm joint angles of the reset pose: pinch site at ARM_START pointing down, turned by `yaw`, solved
    from the home pose (the reference's `initialize_arm` with its default start position)."""
    lie = import_mujoco(ENV, "ogbench.manipspace.lie")
    return _solve_arm(scene, lie.SO3.from_z_radians(yaw) @ scene.down, ARM_START, HOME_QPOS)


def apply_control(scene: CubeScene, data: Any, action: np.ndarray) -> None:
    """Write the controls for a (5,) action in [-1, 1] into `data.ctrl`: the arm's PD targets from IK, the
    gripper's force command. Reads the pinch site's pose as the previous `mj_step` left it (stale by a substep,
    as the reference) and the gripper opening from the current qpos."""
    lie = import_mujoco(ENV, "ogbench.manipspace.lie")
    # the reference's unnormalisation, kept as written: it rounds differently from `action * ACTION_RANGE`
    delta = 0.5 * (action + 1) * (2 * ACTION_RANGE) - ACTION_RANGE
    position = data.site_xpos[scene.pinch_site].copy()
    yaw = lie.SO3.from_matrix(data.site_xmat[scene.pinch_site].copy().reshape(3, 3)).compute_yaw_radians()
    opening = np.clip([data.qpos[scene.gripper_joint] / 0.8], 0, 1)
    target = np.clip(position + delta[:3], *WORKSPACE_BOUNDS)
    turned = lie.SO3.from_z_radians(delta[3]) @ lie.SO3.from_z_radians(yaw) @ scene.down.inverse()
    rotation = lie.SO3.from_z_radians(np.clip(turned.compute_yaw_radians(), -np.pi, np.pi)) @ scene.down
    data.ctrl[ARM_QPOS] = _solve_arm(scene, rotation, target, data.qpos[ARM_QPOS])  # actuators 0-5: the arm
    data.ctrl[scene.gripper_actuator] = 255.0 * np.clip(opening + delta[4], 0.0, 1.0)[0]


def observation_info(scene: CubeScene, data: Any) -> dict[str, Any]:
    """The reference's `compute_ob_info` keys that its observation and ogbench's cube oracle read, from `data` as
    it stands (after a step the effector pose is the stale one the controller also uses)."""
    lie = import_mujoco(ENV, "ogbench.manipspace.lie")
    rotation = lie.SO3.from_matrix(data.site_xmat[scene.pinch_site].copy().reshape(3, 3))  # 9 -> 3 3
    cube_quat = data.qpos[CUBE_QUAT].copy()
    target_quat = data.mocap_quat[scene.target_mocap].copy()
    contact = np.linalg.norm(data.cfrc_ext[scene.right_pad_body]) / 50
    return {
        "proprio/joint_pos": data.qpos[ARM_QPOS].copy(),
        "proprio/joint_vel": data.qvel[ARM_QPOS].copy(),
        "proprio/effector_pos": data.site_xpos[scene.pinch_site].copy(),
        "proprio/effector_yaw": np.array([rotation.compute_yaw_radians()]),
        "proprio/gripper_opening": np.clip([data.qpos[scene.gripper_joint] / 0.8], 0, 1),
        "proprio/gripper_vel": data.qvel[[scene.gripper_joint]].copy(),
        "proprio/gripper_contact": np.array([np.clip(contact, 0, 1)]),
        "privileged/block_0_pos": data.qpos[CUBE_QPOS].copy(),
        "privileged/block_0_quat": cube_quat,
        "privileged/block_0_yaw": np.array([lie.SO3(wxyz=cube_quat).compute_yaw_radians()]),
        "privileged/target_task": "cube",
        "privileged/target_block": 0,
        "privileged/target_block_pos": data.mocap_pos[scene.target_mocap].copy(),
        "privileged/target_block_yaw": np.array([lie.SO3(wxyz=target_quat).compute_yaw_radians()]),
    }


def observation_vector(info: dict[str, Any]) -> np.ndarray:
    """(28,) float32: the reference's state-mode observation (its first 19 values are the proprio part)."""
    parts = [info["proprio/joint_pos"], info["proprio/joint_vel"],
             (info["proprio/effector_pos"] - XYZ_CENTER) * XYZ_SCALE,
             np.cos(info["proprio/effector_yaw"]), np.sin(info["proprio/effector_yaw"]),
             info["proprio/gripper_opening"] * GRIPPER_SCALE, info["proprio/gripper_contact"],
             (info["privileged/block_0_pos"] - XYZ_CENTER) * XYZ_SCALE, info["privileged/block_0_quat"],
             np.cos(info["privileged/block_0_yaw"]), np.sin(info["privileged/block_0_yaw"])]
    return np.concatenate(parts).astype(np.float32)
