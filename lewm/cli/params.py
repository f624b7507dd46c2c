"""`lewm params [--preset paper] [--action-dim 2]`: parameter counts of a preset's model, per component."""

from __future__ import annotations

import argparse

from lewm.config import PRESETS, preset


def main(argv: list[str]) -> int:
    from lewm.model import LeWM

    parser = argparse.ArgumentParser(prog="lewm params", description=__doc__)
    parser.add_argument("--preset", choices=PRESETS, default="paper")
    parser.add_argument("--action-dim", type=int, default=2, help="raw action size A (2 for Two-Room/Push-T)")
    args = parser.parse_args(argv)
    config = preset(args.preset).model
    config.action_dim = args.action_dim
    counts = LeWM(config).parameter_counts()
    print(f"preset {args.preset} (image {config.encoder.image_size}px, action_dim {args.action_dim})")
    for name, count in counts.items():
        print(f"  {name:<16} {count:>12,d}  ({count / 1e6:.2f}M)")
    return 0
