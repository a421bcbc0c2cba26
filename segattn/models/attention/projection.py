"""1x1 convolutions of one input as a single matmul, written as tokens: the q/k/v projections of attention."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


def project_tokens(x: Tensor, convs: Sequence[nn.Conv2d]) -> Tensor:
    """``x: B x C x H x W`` through the 1x1 ``convs`` -> ``B x HW x sum(C_i)``, the convs' outputs side by side.

    One ``baddbmm`` with the concatenated weights reads ``x`` once and writes the tokens in the
    layout attention consumes, instead of one conv each followed by a transposed copy; split the
    result along the last dimension for the per-conv views.
    """
    b, c = x.shape[:2]
    weight = torch.cat([conv.weight.flatten(1) for conv in convs])  # sum(C_i) x C
    bias = torch.cat([conv.bias for conv in convs])
    return torch.baddbmm(bias, x.flatten(2).transpose(1, 2), weight.t().expand(b, c, -1))
