"""Frames per second of one LeWM training step (forward, backward, AdamW step) for each preset.

    python benchmarks/train_throughput.py                      # paper and cpu presets on the CPU
    python benchmarks/train_throughput.py --device cuda --batch 128 --json out.json

Random weights and random uint8 frames: this times the step, not learning. A frame is one image of a clip
(batch x (history + num_preds) frames per step), counted as in REFERENCE section 12.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from contextlib import nullcontext

import torch

from lewm.config import preset
from lewm.model import LeWM
from lewm.objectives import LeWMObjective


def time_preset(name: str, device: torch.device, batch: int | None, steps: int, warmup: int) -> dict:
    config = preset(name)
    config.model.action_dim = 2
    model = LeWM(config.model).to(device).train()
    objective = LeWMObjective(config.objective.sigreg_weight, config.objective.num_projections).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    batch = batch or config.optim.batch_size
    frames = config.model.history + config.data.num_preds
    size = config.model.encoder.image_size
    pixels = torch.randint(0, 256, (batch, frames, 3, size, size), dtype=torch.uint8, device=device)  # B T C H W
    actions = torch.randn(batch, frames, config.model.action_block_dim, device=device)  # B T 5A
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    def step(index: int) -> None:
        with autocast:
            emb, pred = model(pixels, actions)
        loss = objective(emb, pred, seed=index)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for index in range(warmup):
        step(index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for index in range(steps):
        step(warmup + index)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    return {"preset": name, "image_size": size, "batch": batch, "frames_per_step": batch * frames,
            "seconds_per_step": seconds, "frames_per_s": batch * frames / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    parser.add_argument("--batch", type=int, default=None, help="clips per step (default: 8 on CPU for paper, "
                        "else the preset's batch)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    results = []
    for preset_name in args.presets:
        batch = args.batch
        if batch is None and device.type == "cpu" and preset_name == "paper":
            batch = 8  # a 128-clip paper batch takes minutes per step on a laptop CPU
        result = time_preset(preset_name, device, batch, args.steps, args.warmup)
        results.append(result)
        print(f"{preset_name:>6}: {result['image_size']}px batch {result['batch']:>4}: "
              f"{result['seconds_per_step']:.3f} s/step, {result['frames_per_s']:,.0f} frames/s")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"device": str(device), "device_name": name, "results": results}, stream, indent=1)


if __name__ == "__main__":
    main()
