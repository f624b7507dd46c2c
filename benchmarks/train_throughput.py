"""Training frames per second: the plain eager step and our fast step, in one process on the same batches.

    python benchmarks/train_throughput.py                          # paper sizes, batch 8, on the CPU
    python benchmarks/train_throughput.py --preset cpu             # the CPU demo's model
    python benchmarks/train_throughput.py --device cuda --batch 128 --json train.json

One step = forward, LeWM loss, backward, gradient clipping and AdamW, on random weights and random uint8 frames
(this times the step, not learning). A frame is one image of a clip (batch x (history + num_preds) frames per
step), counted as in docs/reference.md section 12.
- eager: the model as written, `torch.optim.AdamW` with its default (for-each) kernels; bf16 autocast on CUDA.
- fast: the same model wrapped in `torch.compile`, AdamW with the fused kernel, bf16 autocast on CUDA (as
  `lewm train --compile`). Both start from the same weights and see the same batches; the script checks that
  their losses agree over the timed steps.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from contextlib import nullcontext

import torch
from _common import setup_device, sync

from lewm.config import preset
from lewm.model import LeWM
from lewm.objectives import LeWMObjective


def make_step(model: torch.nn.Module, network: torch.nn.Module, objective: LeWMObjective, fused: bool,
              device: torch.device, lr: float):
    """A training step closure over its own optimiser; returns the loss tensor (no host sync inside)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-3, fused=fused or None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    def step(pixels: torch.Tensor, actions: torch.Tensor, seed: int) -> torch.Tensor:
        with autocast:
            emb, pred = network(pixels, actions)
        loss = objective(emb, pred, seed=seed)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss.detach()

    return step


def time_steps(step, batches: list[tuple[torch.Tensor, torch.Tensor]], warmup: int,
               device: torch.device) -> tuple[float, list[float]]:
    """Seconds per step over the batches after `warmup` untimed steps, and every step's loss."""
    losses = []
    for index in range(warmup):
        losses.append(step(*batches[index % len(batches)], index))
    sync(device)
    start = time.perf_counter()
    for index, (pixels, actions) in enumerate(batches):
        losses.append(step(pixels, actions, warmup + index))
    sync(device)
    return (time.perf_counter() - start) / len(batches), [float(loss) for loss in losses]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="paper", help="model sizes and image size (paper, cpu, tiny)")
    parser.add_argument("--batch", type=int, default=None,
                        help="clips per step (default: 8 for paper on the CPU, else the preset's batch)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per path")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    device, name = setup_device(args.device, args.threads)

    config = preset(args.preset)
    config.model.action_dim = 2
    batch = args.batch or (8 if device.type == "cpu" and args.preset == "paper" else config.optim.batch_size)
    frames = config.model.history + config.data.num_preds
    size = config.model.encoder.image_size
    generator = torch.Generator(device=device).manual_seed(0)
    batches = [(torch.randint(0, 256, (batch, frames, 3, size, size), dtype=torch.uint8, device=device,
                              generator=generator),  # B T C H W, uint8 until the model's first layer
                torch.randn(batch, frames, config.model.action_block_dim, device=device, generator=generator))
               for _ in range(args.steps)]
    objective = LeWMObjective(config.objective.sigreg_weight, config.objective.num_projections).to(device)
    torch.manual_seed(0)
    eager_model = LeWM(config.model).to(device).train()
    fast_model = copy.deepcopy(eager_model)

    torch.manual_seed(1)  # the same dropout masks for both paths
    eager_step = make_step(eager_model, eager_model, objective, False, device, config.optim.lr)
    eager_s, eager_losses = time_steps(eager_step, batches, args.warmup, device)
    torch.manual_seed(1)
    fast_step = make_step(fast_model, torch.compile(fast_model), objective, True, device, config.optim.lr)
    fast_s, fast_losses = time_steps(fast_step, batches, args.warmup, device)

    per_step = batch * frames
    gap = max(abs(a - b) / max(abs(a), 1e-8) for a, b in zip(eager_losses, fast_losses, strict=True))
    result = {"eager_frames_per_s": per_step / eager_s, "fast_frames_per_s": per_step / fast_s,
              "speedup": eager_s / fast_s, "device": str(device), "device_name": name, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "preset": args.preset, "image_size": size, "batch": batch,
              "frames_per_step": per_step, "eager_seconds_per_step": eager_s, "fast_seconds_per_step": fast_s,
              "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
              "max_relative_loss_difference": gap, "eager_losses": eager_losses, "fast_losses": fast_losses}
    print(f"{args.preset} sizes, {size}px, batch {batch} x {frames} frames, {result['precision']}")
    print(f"  eager:                        {eager_s:.3f} s/step  {result['eager_frames_per_s']:9,.0f} frames/s")
    print(f"  fast (compile + fused AdamW): {fast_s:.3f} s/step  {result['fast_frames_per_s']:9,.0f} frames/s"
          f"   -> {result['speedup']:.2f}x")
    print(f"  same training? largest relative loss difference over {len(eager_losses)} steps: {gap:.1e}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(result, stream, indent=1)


if __name__ == "__main__":
    main()
