"""Planning success against training minutes: train once keeping step checkpoints, evaluate each of them.

    python scripts/success_curve.py --data runs/demo/tworoom_expert.h5 --out runs/curve --steps 900 --every 150
    python scripts/success_curve.py ... -- --model.history 1        # anything after -- goes to lewm train
    python scripts/success_curve.py --data runs/demo-pusht/pusht_weak.h5 --out runs/demo-pusht --env pusht \
        --steps 4000 --every 1000           # a finished run in OUT/run (the Push-T demo keeps step checkpoints)

Writes OUT/curve.json (per checkpoint: step, training minutes, success and random rates with 95% intervals)
and OUT/curve.png. Used to choose the `cpu` preset: the smallest budget that still plans well.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lewm.config import parse_train_config
from lewm.evaluation import default_eval_config, evaluate
from lewm.runs import load_checkpoint
from lewm.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--env", default="two-room")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--every", type=int, required=True, help="evaluate a checkpoint every this many steps")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("train_args", nargs="*", help="extra lewm train flags (after --)")
    args = parser.parse_args()
    run_dir = args.out / "run"
    if not (run_dir / "checkpoints" / "last.pt").exists():
        config = parse_train_config(["--data", args.data, "--out", str(run_dir), "--preset", args.preset,
                                     "--steps", str(args.steps), "--checkpoint-every", str(args.every),
                                     "--keep-step-checkpoints", "--no-progress", *args.train_args])
        train(config)
    points = []
    for path in sorted((run_dir / "checkpoints").glob("step_*.pt")):
        minutes = load_checkpoint(path)["elapsed_s"] / 60
        config = default_eval_config(args.env)  # the environment's protocol (CEM 30 iterations on Push-T)
        config.episodes, config.videos = args.episodes, 0
        result = evaluate(run_dir, args.env, config=config, out_dir=args.out / path.stem, checkpoint=path.name)
        point = {"step": result["protocol"]["checkpoint_step"], "train_minutes": minutes,
                 **{key: result[key] for key in ("success_rate", "ci95", "random_success_rate", "random_ci95",
                                                 "plan_seconds_per_cycle")}}
        points.append(point)
        print(json.dumps(point))
    (args.out / "curve.json").write_text(json.dumps(points, indent=1))
    plot(points, args.out / "curve.png")


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [p["train_minutes"] for p in points]
    figure, axis = plt.subplots(figsize=(5.5, 3.6))
    for key, interval, label, colour in (("success_rate", "ci95", "LeWM + CEM", "tab:blue"),
                                         ("random_success_rate", "random_ci95", "random actions", "tab:gray")):
        axis.plot(minutes, [p[key] for p in points], "o-", color=colour, label=label)
        axis.fill_between(minutes, [p[interval][0] for p in points], [p[interval][1] for p in points],
                          color=colour, alpha=0.15)
    axis.set_xlabel("training minutes (2 CPU cores)")
    axis.set_ylabel("success rate (50 episodes)")
    axis.set_ylim(0, 1)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
