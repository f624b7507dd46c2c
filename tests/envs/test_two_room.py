"""Two-Room dynamics, rendering and the gymnasium environment against the reference geometry."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from lewm.envs import ENV_NAMES, TwoRoomEnv, TwoRoomGeometry, make, render_frames, step_positions
from lewm.envs.two_room import in_wall, sample_free_positions
from lewm.errors import LewmError

G = TwoRoomGeometry()


def _push(start: tuple[float, float], action: tuple[float, float], steps: int) -> np.ndarray:
    """(steps + 1, 2) path of one agent repeating one action."""
    pos = np.array([start], dtype=np.float64)
    path = [pos[0]]
    for _ in range(steps):
        pos = step_positions(pos, np.array([action]))
        path.append(pos[0])
    return np.array(path)


# -- geometry and dynamics -----------------------------------------------------------------------------


def test_geometry_numbers_follow_the_reference() -> None:
    assert (G.area_low, G.area_high) == (21.0, 203.0)
    assert (G.face_left, G.face_right) == (100.0, 124.0)
    assert (G.stop_left, G.stop_right) == (99.5, 124.5)
    assert G.door_center == (112.0, 49.0)
    assert G.door_span == (33.25, 64.75)


def test_wall_stops_an_agent_from_the_left_at_99_5() -> None:
    # the reference lets the centre reach the face (x = 100) and snaps only a move past it back to 99.5
    path = _push((90.0, 150.0), (1.0, 0.0), 20)
    assert path[:, 0].tolist() == [90.0, 95.0, 100.0] + [99.5] * 18
    assert np.all(path[:, 1] == 150.0)


def test_wall_stops_an_agent_from_the_right_at_124_5() -> None:
    path = _push((141.0, 150.0), (-1.0, 0.0), 20)
    assert path[:, 0].tolist() == [141.0, 136.0, 131.0, 126.0] + [124.5] * 17


def test_door_lets_the_agent_through_both_ways() -> None:
    path = _push((90.0, 49.0), (1.0, 0.0), 20)
    assert path[-1, 0] > 124.5 + 5
    back = _push(tuple(path[-1]), (-1.0, 0.0), 20)
    assert back[-1, 0] < 99.5 - 5


def test_agent_leaving_the_door_vertically_is_snapped_to_the_face_of_its_side() -> None:
    # Reference behaviour: inside the wall band, a new y outside the door span puts x at the face (minus 0.5) of
    # the side of the centre line (112) the agent started on, even though it started inside the door.
    path = _push((112.0, 49.0), (0.0, 1.0), 4)
    assert path.tolist() == [[112.0, 49.0], [112.0, 54.0], [112.0, 59.0], [112.0, 64.0], [124.5, 69.0]]
    left = _push((105.0, 40.0), (0.0, -1.0), 2)
    assert left.tolist() == [[105.0, 40.0], [105.0, 35.0], [99.5, 30.0]]
    # a new y still inside the widened span (64.75) keeps the agent in the door
    assert step_positions(np.array([[110.0, 60.0]]), np.array([[0.0, 0.95]])).tolist() == [[110.0, 64.75]]


def test_a_position_set_inside_the_wall_goes_to_the_face_of_its_side_of_the_centre_line() -> None:
    new = step_positions(np.array([[103.0, 150.0], [111.5, 150.0], [112.0, 150.0], [120.0, 150.0]]),
                         np.zeros((4, 2)))
    assert new.tolist() == [[99.5, 150.0], [99.5, 150.0], [124.5, 150.0], [124.5, 150.0]]


def test_positions_and_actions_are_float32_as_in_the_reference() -> None:
    new = step_positions(np.array([[50.1, 60.3]]), np.array([[0.1, -0.7]]))
    expected = np.float32([50.1, 60.3]) + np.float32([0.1, -0.7]) * np.float32(5.0)
    assert new.dtype == np.float64 and new[0].tolist() == expected.astype(np.float64).tolist()
    assert new[0, 0] != 50.1 + 0.5  # the float64 sum differs: the rounding is really float32


def test_borders_clamp_to_the_movement_area() -> None:
    for action, corner in (((-1.0, -1.0), (21.0, 21.0)), ((1.0, 1.0), (203.0, 203.0))):
        path = _push((50.0 if action[0] < 0 else 170.0, 100.0), action, 60)
        assert path[-1].tolist() == list(corner)


def test_actions_are_clamped_to_unit_range() -> None:
    new = step_positions(np.array([[50.0, 50.0]]), np.array([[30.0, -0.5]]))
    assert new.tolist() == [[55.0, 47.5]]


def test_random_walks_never_enter_the_wall_or_leave_the_area() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    pos = sample_free_positions(rng, n)
    # half the agents start in the door, and actions are biased towards the wall to test it hard
    pos[: n // 2, 0] = rng.uniform(100.0, 124.0, n // 2)
    pos[: n // 2, 1] = rng.uniform(*G.door_span, n // 2)
    side = np.where(pos[:, 0] < 112.0, 1.0, -1.0)
    crossings = 0
    for _ in range(300):
        action = rng.uniform(-1.0, 1.0, (n, 2))
        action[:, 0] += 0.5 * side * rng.uniform(0, 1, n)
        action[:, 1] = np.where(rng.uniform(size=n) < 0.1, 1.5 * np.sign(action[:, 1]), action[:, 1])
        new = step_positions(pos, action)
        assert not in_wall(new).any()
        assert (new >= G.area_low).all() and (new <= G.area_high).all()
        # whoever crossed the centre line in one step did so with its new y inside the door span
        crossed = (pos[:, 0] < 112) != (new[:, 0] < 112)
        low, high = G.door_span
        assert ((new[crossed, 1] >= low) & (new[crossed, 1] <= high)).all()
        crossings += int(crossed.sum())
        pos = new
    assert crossings > 0  # the door was actually used


# -- rendering -----------------------------------------------------------------------------------------


def _naive_render(agent: np.ndarray, size: int, target: np.ndarray | None = None) -> np.ndarray:
    """Full-frame reference rendering (no windows) to check the fast renderer byte for byte."""
    scale = 224.0 / size
    c = ((np.arange(size) + 0.5) * scale).astype(np.float32)
    black = ((c >= 10) & (c < 14)) | ((c >= 210) & (c < 214))
    wall = (c >= 107) & (c < 117)
    door = (c >= 35) & (c < 63)
    frame = (c >= 10) & (c < 214)
    outline = (black[:, None] & frame[None, :]) | (frame[:, None] & black[None, :])
    bg = np.where(outline | (frame[:, None] & wall[None, :] & ~door[:, None]), 0.0, 255.0)
    out = []
    for i, xy in enumerate(agent.astype(np.float32)):
        img = np.repeat(bg[..., None], 3, axis=-1).astype(np.float32)
        blobs = [((0.0, 255.0, 0.0), target[i].astype(np.float32))] if target is not None else []
        for color, p in [*blobs, ((255.0, 0.0, 0.0), xy)]:
            ax = np.exp(np.float32(-0.5 / 49) * (c - p[0]) ** 2)
            ay = np.exp(np.float32(-0.5 / 49) * (c - p[1]) ** 2)
            a = (ay[:, None] * ax[None, :])[..., None]
            img = np.rint(img + a * (np.array(color, np.float32) - img))
        out.append(img.astype(np.uint8))
    return np.stack(out)


@pytest.mark.parametrize("size", [32, 64, 224])
def test_fast_render_equals_full_frame_render(size: int) -> None:
    rng = np.random.default_rng(size)
    agent = sample_free_positions(rng, 12)
    agent[0] = (21.0, 21.0)  # corners: windows clipped at the image edge
    agent[1] = (203.0, 203.0)
    target = sample_free_positions(rng, 12)
    target[2] = agent[2] + 3.0  # overlapping blobs: the agent is blended over the target
    fast = render_frames(agent, size, target=target)
    assert fast.shape == (12, size, size, 3) and fast.dtype == np.uint8
    # the windowed blend skips only pixels where 255 * alpha < 0.1: byte-identical to a full-frame blend
    assert np.array_equal(fast, _naive_render(agent, size, target))


def test_thin_lines_survive_coarse_sizes() -> None:
    for size in (8, 12, 17, 24):
        frame = render_frames(np.array([[40.0, 180.0]]), size)[0]
        assert (frame[..., 0] == 0).any(axis=0).sum() >= 3  # two border columns and the wall at least


def test_render_is_deterministic_and_depends_on_the_state() -> None:
    a = render_frames(np.array([[60.0, 150.0]]), 64)
    assert a.tobytes() == render_frames(np.array([[60.0, 150.0]]), 64).tobytes()
    assert not np.array_equal(a, render_frames(np.array([[61.0, 150.0]]), 64))


def test_agent_peak_is_pure_red_at_its_pixel() -> None:
    frame = render_frames(np.array([[50.5, 150.5]]), 224)[0]
    assert frame[150, 50].tolist() == [255, 0, 0]
    # at 64 px (3.5 reference px per pixel) the peak is the pixel containing the centre
    frame = render_frames(np.array([[50.75, 150.75]]), 64)[0]
    red = frame[..., 0].astype(int) - frame[..., 1]
    assert np.unravel_index(np.argmax(red), red.shape) == (43, 14)


def test_walls_are_black_and_the_door_is_white() -> None:
    frame = render_frames(np.array([[40.0, 180.0]]), 224)[0]
    assert (frame[100:200, 107:117] == 0).all()  # wall below the door
    assert (frame[14:35, 107:117] == 0).all()  # wall above the door
    assert (frame[35:63, 107:117] == 255).all()  # the door gap
    assert (frame[10:14, 20:200] == 0).all() and (frame[210:214, 20:200] == 0).all()  # border rows
    assert (frame[20:200, 10:14] == 0).all() and (frame[20:200, 210:214] == 0).all()  # border columns
    assert (frame[:10, :] == 255).all() and (frame[:, 214:] == 255).all()  # outside the outline
    assert (frame[14:100, 120:200] == 255).all()
    small = render_frames(np.array([[40.0, 180.0]]), 64)[0]
    wall_col = int(112 / 3.5)
    assert (small[40:58, wall_col] == 0).all() and (small[11:17, wall_col] == 255).all()


def test_target_is_green_only_when_asked() -> None:
    frame = render_frames(np.array([[40.0, 180.0]]), 224, target=np.array([160.5, 60.5]))[0]
    assert frame[60, 160].tolist() == [0, 255, 0]
    assert render_frames(np.array([[40.0, 180.0]]), 224)[0][60, 160].tolist() == [255, 255, 255]


def test_render_rejects_bad_input() -> None:
    with pytest.raises(LewmError, match=r"shape \(2,\)"):
        render_frames(np.array([1.0, 2.0]), 64)
    with pytest.raises(LewmError, match="non-finite"):
        render_frames(np.array([[np.nan, 2.0]]), 64)
    with pytest.raises(LewmError, match="size = 0"):
        render_frames(np.array([[50.0, 50.0]]), 0)


# -- environment ---------------------------------------------------------------------------------------


def test_set_state_round_trip_and_reset_options() -> None:
    env = TwoRoomEnv(image_size=32)
    obs, info = env.reset(seed=1, options={"state": [30.0, 40.0], "goal_state": [150.0, 170.0]})
    assert env.get_state().tolist() == [30.0, 40.0] and env.get_goal_state().tolist() == [150.0, 170.0]
    assert obs["proprio"].dtype == np.float32 and obs["proprio"].tolist() == [30.0, 40.0]
    assert info["distance"] == pytest.approx(np.hypot(120, 130))
    env.set_state(np.array([60.25, 70.5]))
    assert env.get_state().tolist() == [60.25, 70.5]
    env.set_goal_state((100.0, 20.0))
    assert env.get_goal_state().tolist() == [100.0, 20.0]


def test_reset_samples_free_positions_and_is_seeded() -> None:
    env = TwoRoomEnv(image_size=32)
    states = []
    for seed in range(50):
        env.reset(seed=seed)
        state = env.get_state()
        assert not in_wall(state) and (state >= G.area_low).all() and (state <= G.area_high).all()
        states.append(state)
    env.reset(seed=7)
    assert np.array_equal(env.get_state(), states[7])
    xs = np.array(states)[:, 0]
    assert (xs < 112).any() and (xs > 112).any()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1.0, 2.0, 3.0], r"shape \(3,\)"),
        ([np.nan, 50.0], "not finite"),
        ([250.0, 50.0], "outside the canvas"),
        ([-1.0, 50.0], "outside the canvas"),
        ([112.0, 150.0], "inside the wall"),
        ("ab", "invalid"),
    ],
)
def test_bad_states_raise_one_line_errors(value, message: str) -> None:
    env = TwoRoomEnv(image_size=32)
    with pytest.raises(LewmError, match=message) as error:
        env.set_state(value)
    assert "\n" not in str(error.value)


def test_bad_actions_and_options_raise() -> None:
    env = TwoRoomEnv(image_size=32)
    env.reset(seed=0)
    with pytest.raises(LewmError, match="not finite"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(LewmError, match=r"shape \(3,\)"):
        env.step(np.zeros(3))
    with pytest.raises(LewmError, match="'start'"):
        env.reset(options={"start": [1, 2]})
    with pytest.raises(LewmError, match="image_size"):
        TwoRoomEnv(image_size=0)


def test_step_reward_termination_and_truncation() -> None:
    env = TwoRoomEnv(image_size=32, max_episode_steps=3)
    env.reset(seed=0, options={"state": [50.0, 100.0], "goal_state": [50.0, 125.0]})
    obs, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0], dtype=np.float32))
    assert env.get_state().tolist() == [50.0, 105.0]
    assert reward == pytest.approx(-20.0) and not terminated and not truncated
    assert info["state"].tolist() == [50.0, 105.0] and not info["success"]
    _, reward, terminated, truncated, info = env.step(np.array([0.0, 1.0]))
    assert terminated and info["success"] and reward == pytest.approx(-15.0)
    _, _, _, truncated, _ = env.step(np.array([0.0, 0.0]))
    assert truncated


def test_success_threshold_is_16_px() -> None:
    assert TwoRoomEnv.is_success(np.array([50.0, 50.0]), np.array([65.9, 50.0]))
    assert not TwoRoomEnv.is_success(np.array([50.0, 50.0]), np.array([66.1, 50.0]))
    batch = TwoRoomEnv.is_success(np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[15.9, 0.0], [16.1, 0.0]]))
    assert batch.tolist() == [True, False]


def test_goal_observation_is_the_frame_of_the_goal_state() -> None:
    env = TwoRoomEnv(image_size=64)
    env.reset(seed=3)
    goal = env.get_goal_state()
    expected = env.goal_observation()
    env.set_state(goal)
    assert np.array_equal(expected, env.render())
    assert np.array_equal(env.render(), render_frames(goal[None], 64)[0])


def test_observation_is_the_rendered_state() -> None:
    env = TwoRoomEnv(image_size=64)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (64, 64, 3) and obs["pixels"].dtype == np.uint8
    assert np.array_equal(obs["pixels"], render_frames(obs["proprio"][None], 64)[0])


def test_gymnasium_env_checker_passes() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(TwoRoomEnv(image_size=32), skip_render_check=False)
    # the only acceptable remark: a bare env has no registry spec to try other render modes with
    assert [str(w.message) for w in caught if "spec" not in str(w.message)] == []


def test_registry_and_gymnasium_id() -> None:
    assert ENV_NAMES == ("two-room", "pusht", "reacher", "cube")
    for name in ("two-room", "tworoom", "two_room", "Two-Room"):
        assert isinstance(make(name, image_size=16), TwoRoomEnv)
    assert make("two-room", image_size=48).observation_space["pixels"].shape == (48, 48, 3)
    with pytest.raises(LewmError, match="unknown environment 'nope': choose one of two-room, pusht, reacher, cube"):
        make("nope")
    env = gymnasium.make("lewm/TwoRoom-v0", image_size=16)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (16, 16, 3)
    assert isinstance(env.unwrapped, TwoRoomEnv)
