"""`lewm collect`: simulate episodes with a scripted policy and write them to an HDF5 episode file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from lewm.errors import LewmError

_EXISTING = tyro.conf.create_mutex_group(required=False)
"""--overwrite, --append and --resume: what to do with an existing --out (at most one)."""
Flag = tyro.conf.FlagCreatePairsOff
"""A bool given as a bare flag (--append), without tyro's --no-append twin."""
_NO_DEFAULT = tyro.conf.arg(help_behavior_hint="")
"""A flag's help without tyro's "(default: False)"."""


@dataclass(kw_only=True)
class CollectArgs:
    """Simulate episodes with a scripted policy into an HDF5 episode file (the community layout). Episode e uses the
    generator seeded (seed, e), so the file depends on the seed alone; the file is committed after every batch, so
    a killed run keeps its complete episodes and the same command with --resume finishes it."""

    env: str = "two-room"
    """environment name (two-room, pusht, reacher, cube)"""
    policy: str
    """random, expert (Two-Room: door-seeking with moving targets; Push-T: pushes the block towards a sequence of
    goal poses; Reacher: a joint-space controller chasing moving joint goals; Cube: OGBench's scripted oracle) or
    weak (Push-T only: the reference's collection policy, random actions kept within 100 units of
    the block)"""
    episodes: int
    """number of episodes to write (with --resume: the number the file should hold in the end)"""
    out: Path
    """output .h5 file (refused if it exists, unless --overwrite, --append or --resume)"""
    steps: int = 100
    """frames per episode"""
    image_size: int = 224
    """image side S in pixels"""
    seed: int = 0
    """episode e uses the generator seeded (seed, e)"""
    noise: Annotated[float | None, tyro.conf.arg(
        help_behavior_hint="(default: two-room 1.0, pusht 0.1, reacher 0.5, cube 0.1)")] = None
    """std of the expert's Gaussian action noise"""
    num_envs: int = 64
    """episodes simulated at once"""
    workers: int = 1
    """processes simulating and rendering episodes"""
    compression: Annotated[
        Literal["gzip", "lzf"] | None, tyro.conf.arg(metavar="{gzip,lzf}", help_behavior_hint="(default: none)")
    ] = None
    """compress frames (gzip: about 1.1 KB per 224-px Push-T frame instead of 150 KB)"""
    progress: Annotated[bool, Flag, tyro.conf.arg(help_behavior_hint="")] = True
    """no progress bar"""
    no_shadows: Annotated[bool, Flag, _NO_DEFAULT] = False
    """cube only: render without shadows (about 5x faster on a CPU; the reference renders shadows)"""
    overwrite: Annotated[bool, _EXISTING, Flag, _NO_DEFAULT] = False
    """replace an existing --out"""
    append: Annotated[bool, _EXISTING, Flag, _NO_DEFAULT] = False
    """append --episodes episodes to an existing --out"""
    resume: Annotated[bool, _EXISTING, Flag, _NO_DEFAULT] = False
    """continue an interrupted collection of the same settings until --out holds --episodes episodes"""

    @property
    def mode(self) -> str:
        """The library's mode: x (new file), w (overwrite), a (append) or resume."""
        return "w" if self.overwrite else "a" if self.append else "resume" if self.resume else "x"


def main(argv: list[str]) -> int:
    args = tyro.cli(CollectArgs, args=argv, prog="lewm collect")
    if args.mode == "x" and args.out.exists():
        raise LewmError(f"{args.out}: file exists; pass --overwrite to replace it, --append to add episodes or "
                        "--resume to finish an interrupted collection")
    summary = _collect(args)
    for line in _summary_lines(summary):
        print(line)
    return 0


def _collect(args: CollectArgs) -> dict[str, Any]:
    """Run the collection; Ctrl-C becomes one line saying what the file kept."""
    from lewm.envs.collect import collect  # after parsing, so --help stays quick

    try:
        return collect(
            args.env, args.policy, args.episodes, args.out, steps_per_episode=args.steps, image_size=args.image_size,
            seed=args.seed, noise_std=args.noise, mode=args.mode, num_envs=args.num_envs, progress=args.progress,
            workers=args.workers, compression=args.compression, shadows=False if args.no_shadows else None,
        )
    except KeyboardInterrupt:
        kept = "keeps its complete episodes" if args.out.exists() else "was not created"
        raise LewmError(f"interrupted: {args.out} {kept}; run the same command with --resume to finish") from None


WINDOW_MEANING = {
    "two-room": "25-step windows with start and end more than 16 px apart",
    "pusht": "25-step windows in which the block moves more than 20 units or turns more than pi/9",
    "reacher": "25-step windows whose start is not within 0.05 rad of the end on every joint",
    "cube": "25-step windows in which the cube moves more than 0.04 m",
}
"""What the collect summary's nontrivial share counts, per environment."""


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    """What was written, how fast, and how many 25-step windows are not trivial."""
    fraction = summary["nontrivial_fraction"]
    windows = "n/a (episodes too short, or none written)" if fraction is None else f"{fraction:.3f}"
    what = WINDOW_MEANING[summary["env"]]
    trivial = summary.get("trivial_fraction")
    extra = "" if trivial is None else f"; start already passes the success test for the end: {trivial:.3f}"
    after = f" after its {summary['first_episode']} earlier episodes" if summary["first_episode"] else ""
    return [
        f"wrote {summary['episodes']} {summary['env']}/{summary['policy']} episodes ({summary['rows']} rows, "
        f"{summary['image_size']} px) to {summary['path']}{after} in {summary['seconds']:.1f} s "
        f"({summary['episodes_per_second']:.1f} episodes/s)",
        f"{what}: {windows}{extra}",
    ]
