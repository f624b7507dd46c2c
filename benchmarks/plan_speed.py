"""Seconds per CEM plan: the plain eager planner, our fast planner and a DINO-WM-shaped planner, in one process.

    python benchmarks/plan_speed.py                         # paper sizes on the CPU
    python benchmarks/plan_speed.py --device cuda --compile --json plan.json
    python benchmarks/plan_speed.py --preset cpu            # the CPU demo's model

One plan = 300 samples x 30 iterations x horizon 5 with 3 frames of history (docs/reference.md section 12), on
random weights (timing only; the AdaLN gates are randomised so the predictor is not the identity). The same CEM
noise drives both LeWM planners, and the script reports how far apart their plans are and the fast plan's cost under the
eager fp32 model against the eager plan's (near-tied candidates may swap elites under float rounding):
- eager: `LeWM.rollout` on the history repeated for every sample (fp32, what the model code does as written);
- fast: `lewm.model.FastRollout` (shared observed prefix, AdaLN once per block, last-token readout, matmul
  attention), on a bf16 copy of the weights on CUDA (`--fp32` to keep fp32); `--graph` records the whole plan
  (30 iterations, 150 predictor calls, scoring and elite updates) as one CUDA graph
  (`lewm.planning.GraphedPlanner`); `--compile` wraps the rollout in `torch.compile`: with `--graph` in the
  default mode (fused kernels inside the recorded plan), alone in "reduce-overhead" (a CUDA graph per call);
- DINO-WM-shaped: frozen patch tokens (196 x 384 per frame), a ViT predictor of DINO-WM's sizes (6 layers, 16
  heads, MLP 2048) over the patches of the history frames with frame-causal attention, the cost on all patches
  of the last prediction. Its plan is long on a CPU, so by default the CPU times `--dinowm-calls` predictor
  calls on `--dinowm-samples` samples and scales to the full plan (arithmetic-bound, so linear; the printout
  says so); on CUDA it runs the whole plan.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext
from dataclasses import asdict

import torch
from _common import setup_device, sync
from einops import rearrange, repeat
from torch import nn

from lewm.config import preset
from lewm.model import FastRollout, LeWM
from lewm.planning import CEMConfig, CEMPlanner, GraphedPlanner


def _timed(function, device: torch.device) -> tuple[float, object]:
    """Seconds of one call (after the caller's warm-up) and its result."""
    sync(device)
    start = time.perf_counter()
    result = function()
    sync(device)
    return time.perf_counter() - start, result


def _timed_pair(first, second, device: torch.device, repeats: int) -> tuple[float, float, object, object]:
    """Median seconds of `repeats` calls of each function, alternating them so that a noisy machine (a shared
    VM, turbo states) weighs on both alike; and each one's last result."""
    first_times, second_times = [], []
    for _ in range(repeats):
        seconds, first_result = _timed(first, device)
        first_times.append(seconds)
        seconds, second_result = _timed(second, device)
        second_times.append(seconds)
    return statistics.median(first_times), statistics.median(second_times), first_result, second_result


def build_lewm(preset_name: str, history: int, device: torch.device) -> LeWM:
    config = preset(preset_name).model
    config.action_dim = 2
    config.history = history
    torch.manual_seed(0)
    model = LeWM(config)
    with torch.no_grad():  # random AdaLN gates: a zero-initialised predictor would be the identity
        for name, param in model.named_parameters():
            if "adaLN_modulation" in name:
                param.normal_(0.0, 0.05)
    return model.to(device).eval()


class DinoWMPredictor(nn.Module):
    """A ViT predictor over patch tokens shaped as DINO-WM's: frame-causal attention across history frames."""

    def __init__(self, dim: int = 384, depth: int = 6, heads: int = 16, mlp: int = 2048, patches: int = 196,
                 frames: int = 3, action_dim: int = 10) -> None:
        super().__init__()
        self.patches, self.frames = patches, frames
        layer = nn.TransformerEncoderLayer(dim, heads, mlp, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.position = nn.Parameter(torch.randn(1, frames * patches, dim) * 0.02)
        self.action = nn.Linear(action_dim, dim)
        frame_of = torch.arange(frames * patches) // patches
        self.register_buffer("mask", frame_of[None, :] > frame_of[:, None], persistent=False)  # True = blocked

    def forward(self, tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """tokens (B, F, P, D) patch features of F frames, actions (B, F, A) -> (B, P, D) next frame's patches."""
        frames = tokens.shape[1]
        x = rearrange(tokens + self.action(actions)[:, :, None], "b f p d -> b (f p) d")  # B F*P D
        x = self.transformer(x + self.position[:, : x.shape[1]],
                             mask=self.mask[: x.shape[1], : x.shape[1]])  # B F*P D
        return rearrange(x, "b (f p) d -> b f p d", f=frames)[:, -1]  # B P D


def dinowm_plan_seconds(device: torch.device, cem: CEMConfig, calls: int | None, samples: int | None,
                        dtype: torch.dtype | None) -> dict:
    """Time a DINO-WM-shaped plan: the whole plan when calls is None, else `calls` predictor calls on
    `samples` samples, scaled to iterations x horizon calls on cem.samples samples."""
    model = DinoWMPredictor().to(device).eval()
    history, patches, dim, action_dim = model.frames, model.patches, 384, 10
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
    generator = torch.Generator(device=device).manual_seed(0)
    observed = torch.randn(1, history, patches, dim, device=device, generator=generator)  # 1 F P D
    goal = torch.randn(1, patches, dim, device=device, generator=generator)  # 1 P D

    def rollout(blocks: torch.Tensor) -> torch.Tensor:
        """(S, H, A) -> (S, P, D) patches predicted after the last block (window of `history` frames)."""
        count = blocks.shape[0]
        window = repeat(observed, "1 f p d -> s f p d", s=count)  # S F P D
        acts = torch.zeros(count, history, action_dim, device=device)  # S F A
        for step in range(blocks.shape[1]):
            acts = torch.cat([acts[:, 1:], blocks[:, step : step + 1]], dim=1)  # S F A
            nxt = model(window, acts)  # S P D
            window = torch.cat([window[:, 1:], nxt[:, None]], dim=1)  # S F P D
        return window[:, -1]

    def plan() -> torch.Tensor:
        mean = torch.zeros(cem.horizon, action_dim, device=device)
        std = torch.ones_like(mean)
        for _ in range(cem.iterations):
            candidates = mean + std * torch.randn(cem.samples, cem.horizon, action_dim, device=device,
                                                  generator=generator)  # S H A
            cost = ((rollout(candidates) - goal) ** 2).mean(dim=(1, 2))  # S
            elites = candidates[cost.topk(cem.elites, largest=False).indices]  # E H A
            mean, std = elites.mean(0), elites.std(0)
        return mean

    with torch.inference_mode(), autocast:
        if calls is None:
            plan()  # warm-up
            seconds, _ = _timed(plan, device)
            return {"dinowm_s": seconds, "dinowm_measured": "whole plan"}
        blocks = torch.randn(samples, 1, action_dim, device=device)
        rollout(blocks)  # warm-up
        per_call = statistics.median(_timed(lambda: rollout(blocks), device)[0] for _ in range(calls))
    total_calls = cem.iterations * cem.horizon
    return {"dinowm_s": per_call * total_calls * cem.samples / samples,
            "dinowm_measured": f"{calls} predictor call(s) on {samples} samples ({per_call:.2f} s each), scaled "
                               f"to {total_calls} calls on {cem.samples} samples"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="paper", help="model sizes (paper, cpu, tiny)")
    parser.add_argument("--history", type=int, default=3)
    parser.add_argument("--envs", type=int, default=1, help="environments planned in one batch")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=None, help="timed plans per path, alternating, median "
                        "reported (default: 3 on CPU, 10 on CUDA)")
    parser.add_argument("--fp32", action="store_true", help="keep the fast path in fp32 on CUDA (default bf16)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fast rollout: mode "
                        "'reduce-overhead' (CUDA graphs per call on a GPU), or the default mode with --graph")
    parser.add_argument("--graph", action="store_true", help="record the whole fast plan as one CUDA graph "
                        "(lewm.planning.GraphedPlanner; on the CPU the recording runs uncaptured)")
    parser.add_argument("--dinowm", choices=["auto", "full", "sampled", "skip"], default="auto",
                        help="auto: the whole DINO-WM plan on CUDA, sampled calls on the CPU")
    parser.add_argument("--dinowm-calls", type=int, default=1)
    parser.add_argument("--dinowm-samples", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    device, name = setup_device(args.device, args.threads)
    repeats = args.repeats or (10 if device.type == "cuda" else 3)
    fast_dtype = torch.bfloat16 if device.type == "cuda" and not args.fp32 else None

    model = build_lewm(args.preset, args.history, device)
    cem = CEMConfig(samples=args.samples, elites=30, horizon=args.horizon, iterations=args.iterations)
    planner = CEMPlanner(cem, model.config.action_block_dim)
    generator = torch.Generator(device=device)
    inputs = torch.Generator(device=device).manual_seed(1)
    dim, block = model.config.embed_dim, model.config.action_block_dim
    emb = torch.randn(args.envs, args.history, dim, device=device, generator=inputs)  # N h D
    goal = torch.randn(args.envs, dim, device=device, generator=inputs)  # N D
    past = torch.randn(args.envs, args.history - 1, block, device=device, generator=inputs)  # N h-1 K
    fast_rollout = FastRollout(model, dtype=fast_dtype)
    # inside a recorded plan the compiled rollout only fuses kernels; alone it records its own CUDA graphs
    compile_mode = "default" if args.graph else "reduce-overhead"
    fast_call = (torch.compile(fast_rollout.__call__, mode=compile_mode, dynamic=False) if args.compile
                 else fast_rollout)

    class _Fast:  # the fast rollout, optionally compiled, with its prepare step
        prepare = staticmethod(fast_rollout.prepare)

        def __call__(self, context, blocks):
            return fast_call(context, blocks)

    graphed = GraphedPlanner(planner, _Fast()) if args.graph else None

    def eager_plan():
        generator.manual_seed(0)
        with torch.inference_mode():
            return planner.plan(model.rollout, emb, goal, past, generator=generator)

    def fast_plan():
        generator.manual_seed(0)
        with torch.inference_mode():
            if graphed is not None:
                return graphed.plan(emb, goal, past, generator=generator)
            return planner.plan(_Fast(), emb, goal, past, generator=generator)

    warm = CEMPlanner(CEMConfig(samples=args.samples, elites=30, horizon=args.horizon, iterations=2), block)
    with torch.inference_mode():
        warm.plan(model.rollout, emb, goal, past)
        for _ in range(3 if args.compile else 1):  # compilation and graph capture happen here
            fast_plan()
    eager_s, fast_s, eager, fast = _timed_pair(eager_plan, fast_plan, device, repeats)

    # agreement: the same plan, and the fast plan's true (fp32, eager) cost against the eager plan's
    with torch.inference_mode():
        def true_cost(actions: torch.Tensor) -> torch.Tensor:
            predicted = model.rollout(emb, actions.float(), past)[:, -1]  # N D
            return ((predicted - goal) ** 2).sum(-1)  # N

        action_gap = float((fast.actions.float() - eager.actions).abs().max())
        cost_ratio = float((true_cost(fast.actions) / true_cost(eager.actions)).max())
    result = {"eager_s": eager_s, "fast_s": fast_s, "speedup": eager_s / fast_s, "device": str(device),
              "device_name": name, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "preset": args.preset, "history": args.history, "envs": args.envs, "cem": asdict(cem),
              "fast_precision": "bf16" if fast_dtype is not None else "fp32", "compiled": args.compile,
              "whole_plan_graph": args.graph and device.type == "cuda",
              "plan_max_abs_action_difference": action_gap, "fast_plan_cost_over_eager_plan_cost": cost_ratio,
              "repeats": repeats}
    print(f"plan {args.samples} x {args.iterations} x horizon {args.horizon}, history {args.history}, "
          f"{args.envs} env(s), {args.preset} sizes")
    print(f"  eager (LeWM.rollout, fp32):   {eager_s:8.3f} s")
    recorded = ", whole plan as one CUDA graph" if device.type == "cuda" else ", whole plan recorded (CPU: uncaptured)"
    extras = (", compiled" if args.compile else "") + (recorded if args.graph else "")
    print(f"  fast  (FastRollout, {result['fast_precision']}{extras}): "
          f"{fast_s:8.3f} s   -> {eager_s / fast_s:.2f}x")
    print(f"  same plan? max |action difference| {action_gap:.2e}; fast plan's cost / eager plan's cost "
          f"{cost_ratio:.4f}")

    mode = args.dinowm if args.dinowm != "auto" else ("full" if device.type == "cuda" else "sampled")
    if mode != "skip":
        dino = dinowm_plan_seconds(device, cem, None if mode == "full" else args.dinowm_calls,
                                   None if mode == "full" else args.dinowm_samples, fast_dtype)
        result.update(dino)
        result["dinowm_over_fast"] = dino["dinowm_s"] / fast_s
        print(f"  DINO-WM-shaped (196 x 384 tokens per frame): {dino['dinowm_s']:8.1f} s   "
              f"({dino['dinowm_measured']}) -> LeWM fast is {dino['dinowm_s'] / fast_s:.0f}x faster")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(result, stream, indent=1)


if __name__ == "__main__":
    main()
