"""`lewm collect` for the MuJoCo environments: the file's columns, frames equal to the environment's frames of
the stored states, the summary's window shares, and Cube's shadows recorded for evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lewm.data import EpisodeFile
from lewm.data.hdf5 import file_attributes
from lewm.envs import make
from lewm.envs.collect import collect, recorded_env_options
from lewm.errors import LewmError

pytest.importorskip("mujoco", reason="the MuJoCo extra is not installed: pip install -e '.[mujoco]'")

COLUMNS = {"reacher": {"state": 4, "proprio": 4, "observation": 6, "action": 2},
           "cube": {"state": 41, "action": 5}}


@pytest.mark.slow
@pytest.mark.parametrize("env", ["reacher", "cube"])
def test_collect_writes_the_layout_and_frames_of_the_stored_states(tmp_path: Path, env: str) -> None:
    out = tmp_path / f"{env}.h5"
    options = {"shadows": False} if env == "cube" else {}
    summary = collect(env, "expert", 2, out, steps_per_episode=30, image_size=24, progress=False, **options)
    assert summary["episodes"] == 2 and summary["rows"] == 60
    assert 0.0 <= summary["nontrivial_fraction"] <= 1.0 and summary["trivial_fraction"] is not None
    with EpisodeFile(out) as data:
        assert data.image_shape == (24, 24, 3) and list(data.ep_len) == [30, 30]
        for column, width in COLUMNS[env].items():
            assert data.dataset(column).shape == (60, width), column
        assert data.dataset("state").dtype == np.float64  # replaying the actions reproduces the states
        actions = data.dataset("action")[:]
        assert np.isnan(actions[29]).all() and np.isfinite(actions[:29]).all()
        assert np.abs(actions[:29]).max() <= 1.0
        states, pixels = data.dataset("state")[:], data.dataset(data.pixels_key)
        rendered = make(env, image_size=24, **recorded_env_options(file_attributes(out)))
        for row in (0, 17, 45):  # a dataset frame is the environment's frame of the stored state
            np.testing.assert_array_equal(pixels[row], rendered.unwrapped.render_state(states[row]))
    assert recorded_env_options(file_attributes(out)) == options


def test_shadows_are_for_cube_only_and_resume_refuses_other_shadows(tmp_path: Path) -> None:
    with pytest.raises(LewmError, match="shadows = False applies to cube only, not 'reacher'"):
        collect("reacher", "expert", 1, tmp_path / "r.h5", shadows=False)
    out = tmp_path / "cube.h5"
    collect("cube", "random", 1, out, steps_per_episode=3, image_size=8, progress=False, shadows=False)
    with pytest.raises(LewmError, match="collected with shadows = False, not True"):
        collect("cube", "random", 2, out, steps_per_episode=3, image_size=8, progress=False, mode="resume")
