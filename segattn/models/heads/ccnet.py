"""CCNet head: recurrent criss-cross attention (RCCA) between two 3x3 conv-BN-ReLU layers."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from segattn.models.attention.criss_cross import CrissCrossAttention
from segattn.models.heads.fcn import classifier, conv_bn_relu


class RCCAHead(nn.Module):
    """``conva`` (C -> C/4), the same criss-cross block ``recurrence`` times, ``convb``, concatenation
    ``[x; convb]``, ``bottleneck`` (C + C/4 -> ``channels``), Dropout2d and a 1x1 classifier.

    Shapes: ``x: B x C x h x w -> {"out": B x K x h x w}``. Module names and the concatenation order
    follow the official RCCAModule; ``recurrence=2`` lets every position reach every other one.
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, recurrence: int = 2, dropout: float = 0.1):
        super().__init__()
        if recurrence < 1:
            raise ValueError(f"RCCAHead recurrence must be >= 1, got {recurrence}")
        inter = in_channels // 4
        self.recurrence = recurrence
        self.conva = conv_bn_relu(in_channels, inter)
        self.cca = CrissCrossAttention(inter)
        self.convb = conv_bn_relu(inter, inter)
        self.bottleneck = conv_bn_relu(in_channels + inter, channels)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = self.conva(x)
        for _ in range(self.recurrence):
            out = self.cca(out)
        out = self.convb(out)
        return {"out": self.cls(self.bottleneck(torch.cat([x, out], 1)))}
