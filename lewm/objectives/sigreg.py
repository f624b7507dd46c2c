"""SIGReg: the Sketched Isotropic Gaussian Regulariser that keeps LeWM's embeddings from collapsing.

Each step, the embeddings are projected onto M random unit directions; on each 1-D projection the empirical
characteristic function (ECF) is compared with that of N(0, 1) by the Epps-Pulley statistic, integrated over
[-knot_max, knot_max] with a Gaussian window. By Cramer-Wold, matching every 1-D projection matches the joint
distribution to an isotropic Gaussian, which rules out constant, low-rank or badly scaled embeddings.

Data parallel: the statistic belongs to the *global* batch. Every rank draws the same directions (a seed shared
per step), each rank sums cos/sin over its own samples, and an autograd-aware all-reduce adds the sums. Its
backward all-reduces the incoming gradient too, so each rank's gradient is world_size times its share; DDP then
averages over ranks, which leaves exactly the gradient of the global statistic (the 1/world_size pitfall
avoided). Tested against a single process on the whole batch in tests/objectives/test_ddp.py.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from einops import rearrange
from torch import Tensor, nn


def _distributed_world() -> int:
    """World size when a process group is running, else 1."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def random_directions(dim: int, num: int, seed: int, device: torch.device) -> Tensor:
    """`num` unit vectors in R^dim as the columns of a (D, M) matrix, the same for a given seed on every rank."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    directions = torch.randn(dim, num, generator=generator, device=device)  # D M
    return directions / directions.norm(dim=0, keepdim=True)


class SIGReg(nn.Module):
    """Epps-Pulley normality statistic of random 1-D projections, averaged over projections and time.

    For exactly Gaussian N(0, I) embeddings its expectation is sqrt(2 pi) (1 - 1/sqrt 3) ~= 1.06 whatever the
    batch size and dimension; non-Gaussian embeddings grow with the batch size.
    """

    def __init__(self, num_projections: int = 1024, num_knots: int = 17, knot_max: float = 3.0) -> None:
        super().__init__()
        self.num_projections = num_projections
        knots = torch.linspace(0.0, knot_max, num_knots)  # K
        target = torch.exp(-0.5 * knots**2)  # K: characteristic function of N(0, 1), real
        step = knot_max / (num_knots - 1)
        # trapezoid weights over [0, knot_max], doubled for the symmetric interval, times the Gaussian window
        trapezoid = torch.full((num_knots,), 2.0 * step)
        trapezoid[0] = trapezoid[-1] = step
        self.register_buffer("knots", knots, persistent=False)
        self.register_buffer("target", target, persistent=False)
        self.register_buffer("weights", trapezoid * target, persistent=False)

    @staticmethod
    def expected_gaussian_value() -> float:
        """The statistic's expectation on exactly Gaussian embeddings (continuous integral)."""
        return math.sqrt(2.0 * math.pi) * (1.0 - 1.0 / math.sqrt(3.0))

    def forward(self, embeddings: Tensor, seed: int) -> Tensor:
        """SIGReg of (B, D) or (T, B, D) embeddings; `seed` picks this step's projection directions.

        Under a running process group the batch is the global one; every rank must pass the same B.
        """
        if embeddings.dim() == 2:
            embeddings = embeddings.unsqueeze(0)  # T=1 B D
        z = embeddings.float()  # T B D: the statistic is computed in fp32 even under bf16 autocast
        local_batch = z.shape[1]
        directions = random_directions(z.shape[-1], self.num_projections, seed, z.device)  # D M
        projected = z @ directions  # T B M
        angles = projected.unsqueeze(-1) * self.knots  # T B M K
        cos_sum = angles.cos().sum(dim=1)  # T M K
        sin_sum = angles.sin().sum(dim=1)  # T M K
        world = _distributed_world()
        if world > 1:
            with warnings.catch_warnings():
                # deprecated in favour of functional collectives, which have no differentiable all_reduce yet
                warnings.simplefilter("ignore", FutureWarning)
                sums = dist_fn.all_reduce(torch.stack([cos_sum, sin_sum]))  # 2 T M K, summed over ranks
            cos_sum, sin_sum = sums[0], sums[1]
        # ranks hold equal batches (the trainer drops the last partial one), so the global batch is known
        global_batch = float(local_batch * world)
        ecf_real = cos_sum / global_batch  # T M K
        ecf_imag = sin_sum / global_batch  # T M K
        error = (ecf_real - self.target) ** 2 + ecf_imag**2  # T M K
        statistic = (error * self.weights).sum(dim=-1) * global_batch  # T M
        return rearrange(statistic, "t m -> (t m)").mean()
