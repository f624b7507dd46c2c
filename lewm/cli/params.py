"""`lewm params [--preset paper] [--action-dim 2]`: parameter counts of a preset's model, per component."""

from __future__ import annotations

from dataclasses import dataclass

import tyro

from lewm.config import PresetName, preset


@dataclass
class ParamsArgs:
    """Print the parameter counts of a preset's model, per component."""

    preset: PresetName = "paper"
    """Preset whose model is built (paper, cpu, tiny)."""
    action_dim: int = 2
    """Raw action size A (2 for Two-Room and Push-T)."""


def main(argv: list[str]) -> int:
    args = tyro.cli(ParamsArgs, args=argv, prog="lewm params")
    from lewm.model import LeWM

    config = preset(args.preset).model
    config.action_dim = args.action_dim
    counts = LeWM(config).parameter_counts()
    print(f"preset {args.preset} (image {config.encoder.image_size}px, action_dim {args.action_dim})")
    for name, count in counts.items():
        print(f"  {name:<16} {count:>12,d}  ({count / 1e6:.2f}M)")
    return 0
