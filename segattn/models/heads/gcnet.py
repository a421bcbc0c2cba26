"""GCNet head (Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", ICCVW 2019),
laid out as mmsegmentation's GCHead."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from segattn.models.attention.global_context import GlobalContextBlock
from segattn.models.heads.fcn import classifier, conv_bn_relu


class GCHead(nn.Module):
    """``B x C_in x h x w -> {"out": B x K x h x w}``.

    3x3 conv-BN-ReLU (C_in -> ``channels``), ``GlobalContextBlock(channels, ratio, pooling_type,
    fusion_types)``, 3x3 conv-BN-ReLU, concatenation with the head input, 3x3 conv-BN-ReLU bottleneck
    (C_in + ``channels`` -> ``channels``), Dropout2d and a 1x1 classifier. ``activation``: ``relu`` or
    ``leaky_relu`` (0.01).
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, ratio: float = 0.25,
                 pooling_type: str = "att", fusion_types: Sequence[str] = ("channel_add",), dropout: float = 0.1,
                 activation: str = "relu"):
        super().__init__()
        self.activation = activation
        self.conv_in = conv_bn_relu(in_channels, channels, activation=activation)
        self.gc_block = GlobalContextBlock(channels, ratio=ratio, pooling_type=pooling_type, fusion_types=fusion_types)
        self.conv_gc = conv_bn_relu(channels, channels, activation=activation)
        self.bottleneck = conv_bn_relu(in_channels + channels, channels, activation=activation)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        y = self.conv_gc(self.gc_block(self.conv_in(x)))
        return {"out": self.cls(self.bottleneck(torch.cat([x, y], dim=1)))}
