"""1x1 convolutions of one input as a single matmul, written as tokens: the q/k/v projections of attention;
the query-independent map over positions of a 1x1 conv to one channel (GCNet's context, DNL's unary term);
and the 1x1 conv-BN(-ReLU) projections of mmseg's self-attention blocks."""
from __future__ import annotations

from collections import OrderedDict
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


def conv_module(in_channels: int, out_channels: int, relu: bool = True, padding: int = 0) -> nn.Sequential:
    """1x1 ``conv`` (no bias, zero ``padding``) -> ``bn`` [-> ReLU]: mmcv ``ConvModule``'s layout and key names, as the
    projections of mmseg's ``SelfAttentionBlock`` (ISANet, OCRNet, ANN) and PSAHead store them."""
    layers = [("conv", nn.Conv2d(in_channels, out_channels, 1, padding=padding, bias=False)),
              ("bn", nn.BatchNorm2d(out_channels))]
    return nn.Sequential(OrderedDict(layers + ([("activate", nn.ReLU(inplace=True))] if relu else [])))


def conv_modules(in_channels: int, out_channels: int, num: int) -> nn.Sequential:
    """``num`` 1x1 :func:`conv_module` layers with ReLU (``in -> out -> ... -> out``), keys ``0.conv`` ... as mmseg's
    two-layer key / query projections."""
    widths = [in_channels] + [out_channels] * num
    return nn.Sequential(*(conv_module(a, b) for a, b in zip(widths, widths[1:])))


def memory_format_of(x: Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a channels-last (and not also NCHW-contiguous) map, else the NCHW format: blocks that
    regroup positions hand the next conv the layout they were given."""
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format
