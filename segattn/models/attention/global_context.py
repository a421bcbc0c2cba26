"""Global context block (Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and
Beyond", ICCVW 2019), laid out as mmcv's ``ContextBlock`` (the block mmsegmentation's GCHead uses).

Parameter names as mmcv's: ``conv_mask`` (1x1, C -> 1) for attention pooling; ``channel_add_conv`` /
``channel_mul_conv``: ``Sequential(0: 1x1 conv C -> P, 1: LayerNorm([P, 1, 1]), 2: ReLU, 3: 1x1 conv P -> C)``
with ``P = int(C * ratio)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from segattn.models.attention.projection import position_softmax

POOLING_TYPES = ("att", "avg")
FUSION_TYPES = ("channel_add", "channel_mul")


def _transform(channels: int, planes: int) -> nn.Sequential:
    """The bottleneck transform ``W_v2 ReLU(LN(W_v1 c))``; its last conv starts at zero (mmcv's ``last_zero_init``)."""
    layers = nn.Sequential(nn.Conv2d(channels, planes, 1), nn.LayerNorm([planes, 1, 1]), nn.ReLU(inplace=True),
                           nn.Conv2d(planes, channels, 1))
    nn.init.zeros_(layers[3].weight)
    nn.init.zeros_(layers[3].bias)
    return layers


class GlobalContextBlock(nn.Module):
    """``z_i = x_i * sigmoid(T_mul(c)) + T_add(c)`` with one context vector ``c`` per image.

    ``pooling_type="att"``: ``c = sum_j softmax_j(w_k . x_j + b_k) x_j`` (a single query-independent
    attention map); ``"avg"``: ``c`` is the mean of ``x``. ``T_add`` / ``T_mul``: the bottleneck transform
    ``W_2 ReLU(LayerNorm(W_1 c))`` for each fusion in ``fusion_types`` (``channel_add``, ``channel_mul``).

    Shapes: ``x: B x C x H x W -> B x C x H x W``; the attention map is ``B x HW``, ``c``: ``B x C x 1 x 1``.
    The last conv of each transform starts at zero, so a fresh ``channel_add`` block is the identity.
    """

    def __init__(self, in_channels: int, ratio: float = 0.25, pooling_type: str = "att",
                 fusion_types: Sequence[str] = ("channel_add",)):
        super().__init__()
        if pooling_type not in POOLING_TYPES:
            raise ValueError(f"GlobalContextBlock pooling_type must be one of {POOLING_TYPES}, got {pooling_type!r}")
        fusion_types = tuple(fusion_types)
        if not fusion_types or any(f not in FUSION_TYPES for f in fusion_types):
            raise ValueError(f"GlobalContextBlock fusion_types must be a non-empty subset of {FUSION_TYPES}, got {fusion_types}")
        planes = int(in_channels * ratio)
        if planes < 1:
            raise ValueError(f"GlobalContextBlock ratio {ratio} leaves no channels of {in_channels}")
        self.pooling_type, self.fusion_types = pooling_type, fusion_types
        if pooling_type == "att":
            self.conv_mask = nn.Conv2d(in_channels, 1, 1)
            nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(self.conv_mask.bias)
        self.channel_add_conv = _transform(in_channels, planes) if "channel_add" in fusion_types else None
        self.channel_mul_conv = _transform(in_channels, planes) if "channel_mul" in fusion_types else None

    def attention(self, x: Tensor) -> Tensor:
        """``B x HW`` pooling weights (softmax over positions) of ``pooling_type="att"``."""
        return position_softmax(self.conv_mask, x)

    def context(self, x: Tensor) -> Tensor:
        """``B x C x H x W -> B x C x 1 x 1``: the attention-weighted (or plain) mean of ``x``."""
        if self.pooling_type == "avg":
            return x.mean((2, 3), keepdim=True)
        weights = self.attention(x).to(x.dtype)
        return torch.bmm(x.flatten(2), weights.unsqueeze(-1)).unsqueeze(-1)

    def forward(self, x: Tensor) -> Tensor:
        c = self.context(x)
        out = x
        if self.channel_mul_conv is not None:
            out = out * torch.sigmoid(self.channel_mul_conv(c))
        if self.channel_add_conv is not None:
            out = out + self.channel_add_conv(c)
        return out
