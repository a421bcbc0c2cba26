"""Expectation-maximisation attention (Li et al., "Expectation-Maximization Attention Networks for
Semantic Segmentation", ICCV 2019), as mmsegmentation's ``EMAModule`` (the block of its EMAHead).

The ``bases`` buffer (``1 x C x K``, unit columns) is the block's only state: the zoo's files carry it,
and training moves it towards each batch's estimate with ``momentum``, averaged over the processes of
a distributed run so that every rank keeps the same bases.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


def mean_across_processes(t: Tensor) -> Tensor:
    """The mean of ``t`` over the processes of the default group (``t`` itself outside a distributed run)."""
    if not (dist.is_available() and dist.is_initialized()):
        return t
    t = t / dist.get_world_size()
    dist.all_reduce(t)
    return t


class EMAttention(nn.Module):
    """``K`` bases ``mu``, ``num_stages`` EM steps per image, then ``x~ = mu z^T``.

    E-step ``z_nk = softmax_k(x_n . mu_k)`` over the bases; M-step ``mu_k = sum_n z_nk x_n / sum_n z_nk``
    followed by L2-normalisation of each base. The steps run without gradient; the reconstruction uses
    the last E-step's ``z`` and the last M-step's ``mu``. In training mode the batch-mean of the final
    bases, averaged across processes and L2-normalised, updates the buffer:
    ``bases <- (1 - momentum) bases + momentum mu``.

    Shapes: ``x: B x C x H x W -> B x C x H x W`` (in ``x``'s memory format); ``bases``: ``1 x C x K``;
    ``z``: ``B x HW x K``.
    """

    def __init__(self, channels: int, num_bases: int = 64, num_stages: int = 3, momentum: float = 0.1):
        super().__init__()
        if num_stages < 1 or num_bases < 1:
            raise ValueError(f"EMAttention needs num_stages >= 1 and num_bases >= 1, got {num_stages}, {num_bases}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"EMAttention momentum must be in [0, 1], got {momentum}")
        self.num_stages, self.momentum = num_stages, momentum
        bases = torch.randn(1, channels, num_bases) * math.sqrt(2.0 / num_bases)
        self.register_buffer("bases", F.normalize(bases, dim=1))

    def em(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x: B x C x N`` -> (bases ``B x C x K``, responsibilities ``B x N x K``), without gradient."""
        with torch.no_grad():
            bases = self.bases.to(x.dtype).expand(x.shape[0], -1, -1)
            for _ in range(self.num_stages):
                z = torch.bmm(x.transpose(1, 2), bases).softmax(-1)  # E-step
                bases = F.normalize(torch.bmm(x, F.normalize(z, p=1, dim=1)), dim=1)  # M-step
        return bases, z

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        bases, z = self.em(x.flatten(2))
        if self.training:
            self.update(bases)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():  # keep the layout
            return torch.bmm(z, bases.transpose(1, 2)).view(b, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(bases, z.transpose(1, 2)).view(b, c, h, w)

    @torch.no_grad()
    def update(self, bases: Tensor) -> None:
        """Move the buffer towards the L2-normalised batch (and process) mean of ``bases: B x C x K``."""
        exact = torch.promote_types(bases.dtype, torch.float32)  # fp16 / bf16 bases averaged in fp32
        mean = F.normalize(mean_across_processes(bases.mean(0, keepdim=True).to(exact)), dim=1)
        self.bases.mul_(1 - self.momentum).add_(mean.to(self.bases.dtype), alpha=self.momentum)
