"""Under DDP (CPU processes, gloo) training computes what it should:

- the LeWM objective and its gradients equal those of one process on the whole batch (SIGReg is a statistic of
  the global batch and DDP's averaging loses no 1/world_size factor);
- one trainer step of the real model (BatchNorm in its projectors) with the PLDM objective (an inverse-dynamics
  head DDP does not wrap) equals the step built by hand from each rank's own gradient, averaged;
- `average_gradients`, which averages that head's gradients, gives every rank the mean.
"""

import copy
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lewm.objectives import LeWMObjective
from lewm.runs import load_checkpoint
from lewm.training import train
from lewm.training.data import load_training_data
from lewm.training.distributed import DistInfo, average_gradients
from lewm.training.trainer import RANK_SEED_STRIDE, _seed_everything, build_model, warmup_cosine

BATCH, FRAMES, INPUT, DIM = 32, 4, 24, 16
CPU = torch.device("cpu")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun_environment(rank: int, world: int, port: int) -> None:
    """The environment torchrun sets for each process (setup_distributed joins the group from it)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world))


def _run_processes(worker: Callable, world: int, *args) -> None:
    """worker(rank, world, port, *args) in `world` processes; fail (never hang CI) after 5 minutes.

    Workers leave with os._exit(0) once their results are on disk, without Python's teardown: freeing a DDP
    reducer joins gloo's worker thread while holding the GIL, and that thread can be waiting for the GIL to free
    a finished all-reduce (a torch teardown race, seen here as a hang)."""
    context = mp.spawn(worker, args=(world, _free_port(), *args), nprocs=world, join=False)
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {world} DDP processes did not finish within 5 minutes")


# --------------------------------------------------------------------------------------------------------------
# The LeWM objective on a BatchNorm-free stand-in model
# --------------------------------------------------------------------------------------------------------------

class TinyWorldModel(nn.Module):
    """A BatchNorm-free stand-in for LeWM (encoder + predictor), so only the objective is under test."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(INPUT, 32), nn.Tanh(), nn.Linear(32, DIM))
        self.predictor = nn.Linear(DIM, DIM)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.encoder(frames)  # B T D
        return emb, self.predictor(emb[:, : FRAMES - 1])  # B T-1 D


def _inputs() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = TinyWorldModel()
    frames = torch.randn(BATCH, FRAMES, INPUT, generator=torch.Generator().manual_seed(1))
    return frames, model.state_dict()


def _loss_and_grads(model: nn.Module, frames: torch.Tensor) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    objective = LeWMObjective(sigreg_weight=0.7, num_projections=128)
    emb, pred = model(frames)
    terms = objective(emb, pred, seed=1234)
    terms["loss"].backward()
    module = model.module if isinstance(model, DistributedDataParallel) else model
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
    return {k: v.item() for k, v in terms.items()}, grads


def _objective_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    _torchrun_environment(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        frames, state = _inputs()
        model = TinyWorldModel()
        model.load_state_dict(state)
        ddp = DistributedDataParallel(model)
        half = BATCH // world
        terms, grads = _loss_and_grads(ddp, frames[rank * half : (rank + 1) * half])
        torch.save({"terms": terms, "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)


@pytest.mark.slow
def test_two_processes_match_one_process_on_the_whole_batch(tmp_path) -> None:
    frames, state = _inputs()
    single = TinyWorldModel()
    single.load_state_dict(state)
    full_terms, full_grads = _loss_and_grads(single, frames)

    _run_processes(_objective_worker, 2, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    for rank in ranks:  # every rank sees the global-batch SIGReg
        assert rank["terms"]["sigreg"] == pytest.approx(full_terms["sigreg"], rel=1e-5, abs=1e-6)
    mean_pred = sum(rank["terms"]["pred_loss"] for rank in ranks) / 2
    assert mean_pred == pytest.approx(full_terms["pred_loss"], rel=1e-5)
    mean_loss = sum(rank["terms"]["loss"] for rank in ranks) / 2
    assert mean_loss == pytest.approx(full_terms["loss"], rel=1e-5)
    for name, grad in full_grads.items():
        for rank in ranks:  # DDP leaves the same averaged gradient on both ranks
            torch.testing.assert_close(rank["grads"][name], grad, rtol=1e-5, atol=1e-5, msg=name)


# --------------------------------------------------------------------------------------------------------------
# One trainer step: the real model (BatchNorm) and the PLDM objective (its own head)
# --------------------------------------------------------------------------------------------------------------

def _train_worker(rank: int, world: int, port: int, config) -> None:
    _torchrun_environment(rank, world, port)
    train(config)  # joins the group from the environment, as under torchrun; rank 0 writes the checkpoint
    os._exit(0)


def _step_by_hand(config, world: int) -> tuple[nn.Module, nn.Module, torch.optim.AdamW, dict[str, torch.Tensor]]:
    """What one DDP step must give when BatchNorm is per rank (CPU: sync_batchnorm does not apply): each rank's
    gradient of its own loss on its own half batch, with its own BatchNorm statistics and dropout stream, averaged
    over the ranks for every parameter (the model's through DDP, the head's by hand), then clipped and applied by
    AdamW. Returns the stepped model, objective and optimiser, and rank 0's BatchNorm buffers after its forward."""
    grads, rank0_buffers = [], {}
    for rank in range(world):
        data = load_training_data(config, DistInfo(rank=rank, local_rank=rank, world_size=world, device=CPU))
        clip = next(data.batches(0, config, CPU))  # this rank's first batch
        model, objective = build_model(config, CPU)
        _seed_everything(config.seed + RANK_SEED_STRIDE * rank)  # this rank's dropout stream
        emb, pred = model(clip["pixels"], clip["action"])
        objective(emb, pred, seed=0, actions=clip["action"])["loss"].backward()
        grads.append([p.grad for p in [*model.parameters(), *objective.parameters()]])
        saved_names = model.state_dict().keys()  # the buffers a checkpoint holds (BatchNorm's running statistics)
        rank0_buffers = rank0_buffers or {name: b.clone() for name, b in model.named_buffers() if name in saved_names}
    model, objective = build_model(config, CPU)
    parameters = [*model.parameters(), *objective.parameters()]
    for parameter, per_rank in zip(parameters, zip(*grads, strict=True), strict=True):
        parameter.grad = torch.stack(per_rank).mean(dim=0)
    torch.nn.utils.clip_grad_norm_(parameters, config.optim.grad_clip)
    lr = config.optim.lr * warmup_cosine(0, data.total_steps, data.warmup_steps)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=config.optim.weight_decay)
    optimizer.step()
    return model, objective, optimizer, rank0_buffers


@pytest.mark.slow
def test_one_ddp_step_with_batchnorm_and_the_pldm_head_matches_the_step_by_hand(
        tiny_config, dots_file: Path, tmp_path: Path, one_torch_thread) -> None:
    config = tiny_config(dots_file, tmp_path / "run", steps=1)  # one thread, as in the workers
    config.objective.kind = "pldm"
    config.objective.pldm.inverse_dynamics = 1.0
    config.data.val_fraction = 0.0
    _run_processes(_train_worker, 2, copy.deepcopy(config))
    saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    model, objective, optimizer, rank0_buffers = _step_by_hand(config, world=2)

    assert any(name.endswith("running_mean") for name in rank0_buffers)  # the projectors' BatchNorm
    assert any(name.startswith("inverse_dynamics.") for name in saved["objective"])  # PLDM's head
    for name, parameter in [*model.named_parameters(), *objective.named_parameters()]:
        stored = saved["model"].get(name, saved["objective"].get(name))
        torch.testing.assert_close(stored, parameter.detach(), rtol=1e-6, atol=1e-7, msg=name)
    for name, buffer in rank0_buffers.items():  # rank 0's own batch statistics, as DDP broadcasts them next
        torch.testing.assert_close(saved["model"][name], buffer, rtol=1e-6, atol=1e-7, msg=name)
    # AdamW's first moment is 0.1 x the gradient: the averaged one, at its size (a first Adam step is about
    # lr * sign(gradient), so the parameters alone barely see a gradient scaled by the wrong factor)
    for index, parameter in enumerate([*model.parameters(), *objective.parameters()]):
        torch.testing.assert_close(saved["optimizer"]["state"][index]["exp_avg"],
                                   optimizer.state[parameter]["exp_avg"], rtol=1e-5, atol=1e-9, msg=str(index))


# --------------------------------------------------------------------------------------------------------------
# average_gradients
# --------------------------------------------------------------------------------------------------------------

def _average_gradients_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    _torchrun_environment(rank, world, port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        weights, bias, unused = (nn.Parameter(torch.zeros(shape)) for shape in ((2, 3), (3,), (4,)))
        weights.grad = torch.arange(6.0).reshape(2, 3) * (rank + 1)  # rank 0: 1x, rank 1: 2x
        bias.grad = torch.full((3,), 10.0**rank)  # 1 and 10
        average_gradients([weights, bias, unused], world)
        torch.save({"weights": weights.grad, "bias": bias.grad, "unused": unused.grad},
                   os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    os._exit(0)


@pytest.mark.slow
def test_average_gradients_gives_every_rank_the_mean(tmp_path) -> None:
    _run_processes(_average_gradients_worker, 2, str(tmp_path))
    for rank in range(2):  # the same mean on both ranks: neither the sum nor a rank's own gradient
        grads = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(grads["weights"], torch.arange(6.0).reshape(2, 3) * 1.5)  # (1x + 2x) / 2
        torch.testing.assert_close(grads["bias"], torch.full((3,), 5.5))  # (1 + 10) / 2
        assert grads["unused"] is None  # a parameter without a gradient is left without one
