"""CCNet head: recurrent criss-cross attention (RCCA) between two 3x3 conv-BN-ReLU layers."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from segattn.models.attention.criss_cross import CrissCrossAttention
from segattn.models.heads.fcn import classifier, conv_bn_relu


class RCCAHead(nn.Module):
    """``conva`` (C -> C/4), the same criss-cross block ``recurrence`` times, ``convb``, concatenation
    ``[x; convb]``, ``bottleneck`` (C + C/4 -> ``channels``), Dropout2d and a 1x1 classifier.

    Shapes: ``x: B x C x h x w -> {"out": B x K x h x w}``. Module names and the concatenation order
    follow the official RCCAModule; ``recurrence=2`` lets every position reach every other one.
    ``inter_channels`` (default C/4) is the attention width (mmseg's CCHead: ``channels``);
    ``activation``: ``relu`` or ``leaky_relu`` (0.01, the official InPlaceABN).
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, recurrence: int = 2, dropout: float = 0.1,
                 inter_channels: Optional[int] = None, activation: str = "relu"):
        super().__init__()
        if recurrence < 1:
            raise ValueError(f"RCCAHead recurrence must be >= 1, got {recurrence}")
        inter = inter_channels or in_channels // 4
        self.recurrence, self.activation = recurrence, activation
        self.conva = conv_bn_relu(in_channels, inter, activation=activation)
        self.cca = CrissCrossAttention(inter)
        self.convb = conv_bn_relu(inter, inter, activation=activation)
        self.bottleneck = conv_bn_relu(in_channels + inter, channels, activation=activation)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = self.conva(x)
        for i in range(self.recurrence):  # the last pass keeps q/k/v: its backward runs first (no recomputation)
            out = self.cca(out, recompute=i < self.recurrence - 1)
        out = self.convb(out)
        return {"out": self.cls(self.bottleneck(torch.cat([x, out], 1)))}
