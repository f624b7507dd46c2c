"""A whole sampling-solver plan replayed as one CUDA graph: every round, every rollout step and the final cost.

A LeWM plan is latency-bound on a GPU: 30 rounds x 5 horizon steps are 150 predictor calls of a few
microseconds of arithmetic each, and launching their kernels one by one from Python costs more than running
them. `GraphedPlanner` records the plan once per input shape (N environments, h observed frames) with
`torch.cuda.graph` and afterwards only copies the inputs into static buffers, draws the noise and replays the
recording. The recorded work is exactly the solver's `start`, `iterate` and `final_cost`, so the plan is the one
`SamplingSolver.plan` makes from the same generator (a test checks it on the CPU, where nothing is captured and
the same code runs directly). Any sampling solver works (CEM, iCEM, MPPI, predictive sampling); gradient descent,
which needs autograd, does not.

Shapes: N environments, S samples, I rounds, h observed frames, H horizon, D embedding, K block size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from lewm.planning.rollout import ActionBounds, PlainRollout, RolloutFn, as_runner
from lewm.planning.solver import PlanResult, SamplingSolver


@dataclass
class _Recording:
    """Static input buffers of one input shape and the function that plans from them."""

    emb_history: Tensor
    """(N, h, D) observed embeddings, copied in before every replay."""
    goal: Tensor
    """(N, D) goal embeddings."""
    past_blocks: Tensor | None
    """(N, h-1, K) executed blocks, or None (zeros)."""
    start_mean: Tensor
    """(N, H, K) the first mean: zeros or a warm start, copied in before every replay."""
    noise: Tensor
    """(I, *noise_shape) standard normal draws, refilled before every replay."""
    bounds: ActionBounds
    """(H, K) candidate limits on this recording's device: fixed for the planner, so copied in once."""
    run: Callable[[], tuple[Tensor, Tensor, Tensor]] | None
    """Plans from the buffers: the plan (N, H, K), its cost (N,) and the best cost per round (I, N). On CUDA it
    replays the graph and returns the graph's own output tensors."""


class GraphedPlanner:
    """`SamplingSolver.plan` recorded once per input shape as a CUDA graph and replayed (CPU: run directly).

    rollout: a `RolloutFn` or a `PlainRollout`-like object (e.g. `lewm.model.FastRollout`, possibly wrapped in
    `torch.compile` with the default mode for fused kernels; its own CUDA graphs must stay off). For bf16 give
    it `FastRollout(model, dtype=torch.bfloat16)`: weights converted once, rather than autocast, whose cast
    cache must be off under a capture, so every replay would cast every weight again.
    warmup: plans run on a side stream before recording (lazy initialisation, compilation).
    """

    def __init__(self, planner: SamplingSolver, rollout: RolloutFn | PlainRollout, warmup: int = 2) -> None:
        if not isinstance(planner, SamplingSolver):
            raise ValueError(f"a {planner.name} plan cannot be recorded as a CUDA graph: use a sampling solver "
                             "(cem, icem, mppi, ps) or another rollout")
        self.planner = planner
        self.runner = as_runner(rollout)
        self.warmup = warmup
        self._recordings: dict[tuple, _Recording] = {}

    @torch.no_grad()
    def plan(self, emb_history: Tensor, goal: Tensor, past_blocks: Tensor | None = None,
             generator: torch.Generator | None = None, init_actions: Tensor | None = None) -> PlanResult:
        """Plan H blocks for each of N environments; the arguments are those of `SamplingSolver.plan`."""
        key = (tuple(emb_history.shape), past_blocks is None, emb_history.device, emb_history.dtype)
        recording = self._recordings.get(key)
        if recording is None:
            recording = self._recordings[key] = self._record(emb_history, goal, past_blocks)
        recording.emb_history.copy_(emb_history)
        recording.goal.copy_(goal)
        if past_blocks is not None:
            recording.past_blocks.copy_(past_blocks)
        recording.start_mean.copy_(self.planner.start_mean(emb_history.shape[0], emb_history.device, init_actions))
        for draws in recording.noise:  # the draws SamplingSolver.plan makes, one per round
            draws.normal_(generator=generator)
        actions, cost, trace = recording.run()
        return PlanResult(actions=actions.clone(), cost=cost.clone(), cost_per_iteration=list(trace.clone()))

    def _record(self, emb_history: Tensor, goal: Tensor, past_blocks: Tensor | None) -> _Recording:
        """Static buffers for this shape and the plan over them, captured as a CUDA graph on a GPU."""
        planner, runner, cfg = self.planner, self.runner, self.planner.config
        envs, device = emb_history.shape[0], emb_history.device
        with torch.inference_mode(False):  # normal tensors: writable in and out of inference mode
            static = _Recording(
                emb_history=emb_history.clone(), goal=goal.clone(),
                past_blocks=None if past_blocks is None else past_blocks.clone(),
                start_mean=planner.start_mean(envs, device),
                noise=torch.randn(cfg.iterations, *planner.noise_shape(envs), device=device),
                bounds=planner.bounds.to(device),  # before any capture: a recorded plan must not copy from the host
                run=None,  # set below, once the plan over these buffers exists
            )

        def body() -> tuple[Tensor, Tensor, Tensor]:
            context = runner.prepare(static.emb_history, static.past_blocks, cfg.samples, cfg.horizon)
            state = planner.start(static.start_mean)
            trace = []
            for draws in static.noise:  # I rounds
                state, best = planner.iterate(runner, context, static.goal, state, planner.noise_view(draws),
                                              static.bounds)
                trace.append(best)
            cost = planner.final_cost(runner, static.emb_history, static.past_blocks, static.goal, state[0])
            return state[0], cost, torch.stack(trace)  # (N, H, K), (N,), (I, N)

        if device.type != "cuda":
            static.run = body
            return static
        # warm up on a side stream (lazy initialisation, torch.compile's compilation), then record
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                body()
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = body()

        def replay() -> tuple[Tensor, Tensor, Tensor]:
            graph.replay()
            return outputs

        static.run = replay
        return static
