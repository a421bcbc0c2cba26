"""1x1 convolutions of one input as a single matmul, written as tokens: the q/k/v projections of attention;
and the query-independent map over positions of a 1x1 conv to one channel (GCNet's context, DNL's unary term)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


def stacked_weights(convs: Sequence[nn.Conv2d]) -> tuple[Tensor, Tensor]:
    """The 1x1 ``convs`` as one projection: weight ``sum(C_i) x C`` and bias ``sum(C_i)``."""
    return torch.cat([conv.weight.flatten(1) for conv in convs]), torch.cat([conv.bias for conv in convs])


def project(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``x: B x C x H x W``, ``weight: D x C``, ``bias: D`` -> tokens ``B x HW x D`` (``W x_p + b`` per position p).

    One ``baddbmm`` reads ``x`` in place (NCHW or channels-last) and writes the tokens in the layout
    attention consumes, instead of one conv per projection followed by a transposed copy.
    """
    b, c = x.shape[:2]
    return torch.baddbmm(bias, x.flatten(2).transpose(1, 2), weight.t().expand(b, c, -1))


def project_tokens(x: Tensor, convs: Sequence[nn.Conv2d]) -> Tensor:
    """``x: B x C x H x W`` through the 1x1 ``convs`` -> ``B x HW x sum(C_i)``, the convs' outputs side by side;
    split the result along the last dimension for the per-conv views."""
    return project(x, *stacked_weights(convs))


def position_softmax(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``x: B x C x H x W`` -> ``B x HW`` weights, ``softmax_j(w . x_j + b)`` over positions, of the 1x1 ``conv`` (C -> 1)."""
    return conv(x).flatten(1).softmax(-1)
