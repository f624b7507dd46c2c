"""The one-command demo: collect expert data, train LeWM on the CPU, plan towards goals, compare with random.

Two-Room by default (`lewm demo`), Push-T with `lewm demo --env pusht`. Everything lands in one folder
(default runs/demo, runs/demo-pusht):
    ENV_POLICY.h5           the collected episodes (community HDF5 layout), e.g. tworoom_expert.h5, pusht_weak.h5
    run/                    the training run (config.yaml, checkpoints/, metrics.jsonl, plots/)
    eval/                   eval.json, success.png, episodes.gif
    eval.json               eval/eval.json plus the minutes each stage took
Running it again reuses what is already there: the data, a finished run (an interrupted one is resumed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lewm.config import TrainConfig, preset
from lewm.data import EpisodeFile
from lewm.envs.collect import collect
from lewm.envs.registry import DATA_PREFIX, canonical_name
from lewm.errors import LewmError
from lewm.evaluation import EvalConfig, default_eval_config, evaluate
from lewm.runs import load_checkpoint
from lewm.training import train
from lewm.utils.io import atomic_write_text


@dataclass
class DemoPlan:
    """Sizes of a demo, chosen to fit on 2 CPU cores: Two-Room in 15 minutes (6.5 measured), Push-T in an hour
    (35 measured)."""

    episodes: int = 400
    """Episodes to collect."""
    policy: str = "expert"
    """Collection policy (`lewm collect --policy`): Two-Room's door-seeking expert, or Push-T's "weak" policy."""
    steps_per_episode: int = 100
    """Frames per episode."""
    image_size: int = 64
    """Side of the collected frames, also the encoder's input size (no resizing)."""
    patch_size: int = 8
    """ViT patch side: image_size / patch_size patches per row (64 / 8 = 8, as the cpu preset)."""
    train_steps: int = 1500
    """Optimiser steps (the cpu preset's 1500)."""
    noise_std: float | None = 1.0
    """Expert action noise (Two-Room: covers the action space while crossing rooms; None: the environment's
    `lewm.envs.collect.DEFAULT_NOISE`)."""
    eval_episodes: int = 50
    """Start/goal pairs evaluated (the paper's 50)."""
    history: int = 1
    """Frames of context the predictor sees (paper: 1 on Two-Room, 3 elsewhere)."""
    curve_every: int | None = None
    """Also keep a step checkpoint every this many steps (for `scripts/success_curve.py --run`); None: only
    last.pt."""
    shadows: bool | None = None
    """Cube only: render with shadows (the reference) or without (about 5x faster on a CPU); None elsewhere."""
    workers: int = 1
    """Processes collecting (MuJoCo rendering dominates Reacher's and Cube's collection)."""


DEMO_PLANS = {
    "two-room": DemoPlan(),
    "pusht": DemoPlan(episodes=1000, policy="weak", history=3, train_steps=4000, curve_every=1000),
    "reacher": DemoPlan(episodes=200, steps_per_episode=200, noise_std=None, history=3, train_steps=3000,
                        curve_every=1000, workers=2),
    "cube": DemoPlan(episodes=150, steps_per_episode=200, noise_std=None, history=3, train_steps=2000,
                     curve_every=1000, shadows=False, workers=2),
}
"""Each environment's demo sizes. Push-T: the reference's collection policy ("weak": random actions whose target
stays within 100 units of the block), on which CEM with the true physics solves 98% of the demo's protocol pairs
(docs/pusht_difficulty_weak.json) against 46% on our scripted expert's data, where the block moves in 98% of
25-step windows; history 3 as the paper on Push-T (one frame does not show the agent's velocity, which carries
over between blocks under the PD controller); 4000 steps (about half an hour here) and a 30-iteration evaluation;
a step checkpoint every 1000 for the success curve. Reacher and Cube: 200-step episodes of the expert (as the
paper's data), history 3 (the paper's outside Two-Room), collected by 2 processes since MuJoCo rendering dominates;
Cube rendered without shadows (about 35 ms per frame here instead of 120) and with fewer episodes and steps, so
that it fits in an hour on 2 cores (docs/reacher_cpu_demo.json, docs/cube_cpu_demo.json)."""

def data_name(env: str, plan: DemoPlan) -> str:
    """The demo's data file name: tworoom_expert.h5, pusht_weak.h5 ..."""
    return f"{DATA_PREFIX[env]}_{plan.policy}.h5"


def demo_train_config(data: Path, run_dir: Path, plan: DemoPlan | None = None) -> TrainConfig:
    """The cpu preset pointed at the demo's data, with the plan's history (Two-Room: 1, as the paper).

    Measured on 2 cores (Two-Room): 1500 steps take about 6 minutes and reach 90% success (lambda 0.2;
    docs/tworoom_cpu_demo.json) against 18% for random actions, 80-82% over three other training seeds
    (docs/tworoom_cpu_demo_seeds.json), and 76% with the paper's lambda 0.1 (docs/tworoom_cpu_curve.json).
    """
    plan = plan or DemoPlan()
    config = preset("cpu")
    config.model.history = plan.history
    config.model.encoder.image_size = plan.image_size
    config.model.encoder.patch_size = plan.patch_size
    config.steps = plan.train_steps
    if plan.curve_every is not None:
        config.checkpoint_every, config.keep_step_checkpoints = plan.curve_every, True
    config.data_path = data
    config.out = run_dir
    config.validate()
    return config


def _complete_episodes(data: Path) -> int:
    """Complete episodes in the demo's data file (0 when there is none, or only an empty start of one)."""
    if not data.exists():
        return 0
    try:
        with EpisodeFile(data) as file:
            return file.num_episodes
    except LewmError:
        return 0


def run_demo(out: Path = Path("runs/demo"), plan: DemoPlan | None = None, train_config: TrainConfig | None = None,
             eval_config: EvalConfig | None = None, log=print, env: str = "two-room") -> dict[str, Any]:
    """Collect -> train -> evaluate, reusing finished stages; returns eval.json plus the stage timings."""
    env = canonical_name(env)
    plan = plan or DEMO_PLANS[env]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    data = out / data_name(env, plan)
    start = time.perf_counter()
    held = _complete_episodes(data)
    if held >= plan.episodes:
        log(f"[1/3] reusing {data}")
    else:  # a file left by a killed demo is finished, not trusted (collect refuses one of other settings)
        log(f"[1/3] collecting {plan.episodes - held} {plan.policy} {env} episodes -> {data}")
        collect(env, plan.policy, plan.episodes, data, steps_per_episode=plan.steps_per_episode,
                image_size=plan.image_size, seed=0, noise_std=plan.noise_std, mode="resume" if held else "x",
                shadows=plan.shadows, workers=plan.workers)
    timings["collect_minutes"] = (time.perf_counter() - start) / 60

    run_dir = out / "run"
    config = train_config or demo_train_config(data, run_dir, plan)
    last = run_dir / "checkpoints" / "last.pt"
    start = time.perf_counter()
    if last.exists():
        done = load_checkpoint(last)["step"]
        total = config.steps
        if total is not None and done >= total:
            log(f"[2/3] reusing the trained run in {run_dir} (step {done})")
        else:
            log(f"[2/3] resuming training in {run_dir} from step {done}")
            config.resume = True
            train(config)
    else:
        log(f"[2/3] training the cpu preset in {run_dir}")
        train(config)
    timings["train_minutes"] = (time.perf_counter() - start) / 60

    start = time.perf_counter()
    eval_config = eval_config or default_eval_config(env, plan.eval_episodes)
    log(f"[3/3] planning towards {eval_config.episodes} goals 25 steps ahead (and a random policy on the same pairs)")
    result = evaluate(run_dir, env, data_path=data, config=eval_config, out_dir=out / "eval")
    timings["eval_minutes"] = (time.perf_counter() - start) / 60
    result["timings"] = timings
    atomic_write_text(out / "eval.json", json.dumps(result, indent=1))
    return result
