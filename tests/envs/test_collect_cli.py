"""`lewm collect` on the command line: options and one-line errors (a collection killed with SIGKILL that --resume
finishes: test_collect.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import lewm.envs.collect as collect_module
from lewm.cli.main import run
from lewm.data.hdf5 import EpisodeFile


def _exit_status(args: list[str]) -> int:
    """`run`'s status, also when the parser exits itself (tyro prints its own message where no hook turns it into
    a `LewmError`)."""
    try:
        return run(args)
    except SystemExit as stop:
        return int(stop.code or 0)


def test_cli_collects_appends_and_resumes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli.h5"
    args = ["collect", "--env", "two-room", "--policy", "random", "--episodes", "3", "--out", str(out),
            "--steps", "30", "--image-size", "16", "--no-progress"]
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 two-room/random episodes (90 rows, 16 px)" in printed
    with EpisodeFile(out) as episodes:
        assert episodes.num_episodes == 3 and episodes.image_shape == (16, 16, 3)
    assert run([*args, "--append"]) == 0
    with EpisodeFile(out) as episodes:
        assert episodes.num_episodes == 6
    args[args.index("--episodes") + 1] = "8"
    capsys.readouterr()
    assert run([*args, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 two-room/random episodes (60 rows, 16 px) to" in printed
    assert "after its 6 earlier episodes" in printed
    with EpisodeFile(out) as episodes:
        assert episodes.num_episodes == 8


def test_help_shows_every_option(capsys) -> None:
    assert _exit_status(["collect", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--env", "--policy", "--episodes", "--out", "--steps", "--image-size", "--seed", "--noise",
                   "--num-envs", "--workers", "--compression", "--no-progress", "--overwrite", "--append",
                   "--resume"):
        assert option in text, option
    assert "--no-overwrite" not in text and "--no-resume" not in text  # bare flags, no tyro pairs


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--policy", "greedy"], "unknown policy 'greedy': choose one of random, expert, weak"),
        (["--policy", "weak", "--env", "two-room"],
         "policy 'weak' is for pusht only, not 'two-room': use random or expert"),
        (["--policy", "expert", "--episodes", "0"], "episodes = 0 is invalid: must be an integer >= 1"),
        (["--policy", "expert", "--steps", "-3"], "steps_per_episode = -3 is invalid: must be an integer >= 1"),
        (["--policy", "expert", "--num-envs", "0"], "num_envs = 0 is invalid: must be an integer >= 1"),
        (["--policy", "expert", "--noise", "-1"], "noise_std = -1.0 is invalid: must be a finite number >= 0"),
        (["--policy", "expert", "--env", "mars"],
         "unknown environment 'mars': choose one of two-room, pusht, reacher, cube"),
        (["--policy", "expert", "--no-shadows"], "shadows = False applies to cube only, not 'two-room'"),
    ],
)
def test_bad_values_exit_2_with_one_line(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    args = ["collect", "--episodes", "1", "--out", str(tmp_path / "c.h5"), "--image-size", "8", *extra]
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lewm collect: error: {message}"  # one line, the command named once
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--episodes", "two"], ("--episodes", "two")),
        (["--overwrite", "--append"], ("--overwrite and --append",)),
        (["--append", "--resume"], ("--append and --resume",)),
        (["--compression", "zstd"], ("--compression", "zstd")),
    ],
)
def test_rejected_command_lines_exit_2(tmp_path: Path, capsys, extra: list[str], words: tuple[str, ...]) -> None:
    args = ["collect", "--policy", "expert", "--episodes", "1", "--out", str(tmp_path / "c.h5"), *extra]
    assert _exit_status(args) == 2
    err = capsys.readouterr().err
    assert all(word in err for word in words), err
    assert not (tmp_path / "c.h5").exists()


def test_cli_refuses_an_existing_out(tmp_path: Path, capsys) -> None:
    out = tmp_path / "exists.h5"
    out.write_bytes(b"precious")
    args = ["collect", "--policy", "expert", "--episodes", "1", "--out", str(out), "--no-progress"]
    assert run(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"lewm collect: error: {out}: file exists; pass --overwrite to replace it, --append to add "
                   "episodes or --resume to finish an interrupted collection")
    assert out.read_bytes() == b"precious"


def test_resume_with_other_settings_names_the_setting(tmp_path: Path, capsys) -> None:
    out = tmp_path / "small.h5"
    args = ["collect", "--policy", "random", "--episodes", "4", "--out", str(out), "--steps", "10", "--no-progress"]
    assert run([*args, "--image-size", "8"]) == 0
    capsys.readouterr()
    assert run([*args, "--image-size", "16", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lewm collect: error: {out}: cannot resume: the file was collected with image_size = 8, not 16"


def test_ctrl_c_is_one_line_and_keeps_the_committed_episodes(tmp_path: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = collect_module.simulate_episodes, []

    def interrupt_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(collect_module, "simulate_episodes", interrupt_the_second_batch)
    out = tmp_path / "stopped.h5"
    args = ["collect", "--policy", "random", "--episodes", "6", "--out", str(out), "--steps", "10",
            "--image-size", "8", "--num-envs", "2", "--no-progress"]
    assert run(args) == 2
    assert capsys.readouterr().err.strip() == (f"lewm collect: error: interrupted: {out} keeps its complete "
                                               "episodes; run the same command with --resume to finish")
    with EpisodeFile(out) as episodes:
        assert episodes.num_episodes == 2
    monkeypatch.setattr(collect_module, "simulate_episodes", real)
    assert run([*args, "--resume"]) == 0
    with EpisodeFile(out) as episodes:
        assert episodes.num_episodes == 6
