"""`lewm collect`: simulate episodes with a scripted policy and write them to an HDF5 episode file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from lewm.errors import LewmError

USAGE = (
    "lewm collect --env {two-room,pusht} --policy {random,expert,weak} --episodes N --out FILE.h5 [--steps 100] "
    "[--image-size 224] [--seed 0] [--noise STD] [--num-envs 64] [--workers 1] [--compression gzip|lzf] "
    "[--overwrite | --append]"
)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one-line `LewmError`s (exit status 2 through the CLI main) instead of usage."""

    def error(self, message: str) -> NoReturn:
        raise LewmError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lewm collect", usage=USAGE, description=__doc__)
    parser.add_argument("--env", default="two-room", help="environment name (two-room, pusht)")
    parser.add_argument("--policy", required=True,
                        help="random, expert (Two-Room: door-seeking with moving targets; "
                             "Push-T: pushes the block towards a sequence of goal poses) or weak (Push-T only: "
                             "the reference's collection policy, random actions kept within 100 units of the block)")
    parser.add_argument("--episodes", type=int, required=True, help="number of episodes to write")
    parser.add_argument("--out", required=True, help="output .h5 file (refused if it exists, unless told)")
    parser.add_argument("--steps", type=int, default=100, help="frames per episode")
    parser.add_argument("--image-size", type=int, default=224, help="image side S in pixels")
    parser.add_argument("--seed", type=int, default=0, help="episode e uses the generator seeded (seed, e)")
    parser.add_argument("--noise", type=float, default=None,
                        help="std of the expert's Gaussian action noise (default: two-room 1.0, pusht 0.1)")
    parser.add_argument("--num-envs", type=int, default=64, help="episodes simulated at once")
    parser.add_argument("--workers", type=int, default=1, help="processes simulating and rendering episodes")
    parser.add_argument("--compression", choices=("gzip", "lzf"), default=None,
                        help="compress frames (gzip: about 1.1 KB per 224-px Push-T frame instead of 150 KB)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    existing.add_argument("--append", action="store_true", help="append to an existing --out")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from lewm.envs.collect import collect  # after parsing, so --help stays quick

    mode = "w" if args.overwrite else "a" if args.append else "x"
    if mode == "x" and Path(args.out).exists():
        raise LewmError(f"{args.out}: file exists; pass --overwrite to replace it or --append to add episodes")
    summary = collect(
        args.env, args.policy, args.episodes, args.out, steps_per_episode=args.steps, image_size=args.image_size,
        seed=args.seed, noise_std=args.noise, mode=mode, num_envs=args.num_envs, progress=not args.no_progress,
        workers=args.workers, compression=args.compression,
    )
    fraction = summary["nontrivial_fraction"]
    windows = "n/a (episodes too short)" if fraction is None else f"{fraction:.3f}"
    if summary["env"] == "pusht":
        what = "25-step windows in which the block moves more than 20 units or turns more than pi/9"
        trivial = summary["trivial_fraction"]
        extra = "" if trivial is None else f"; start already passes the success test for the end: {trivial:.3f}"
    else:
        what, extra = "25-step windows with start and end more than 16 px apart", ""
    print(
        f"wrote {summary['episodes']} {summary['env']}/{summary['policy']} episodes ({summary['rows']} rows, "
        f"{summary['image_size']} px) to {summary['path']} in {summary['seconds']:.1f} s "
        f"({summary['episodes_per_second']:.1f} episodes/s)"
    )
    print(f"{what}: {windows}{extra}")
    return 0
