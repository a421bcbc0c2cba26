"""ISANet head (Huang et al., "Interlaced Sparse Self-Attention for Semantic Segmentation", 2019), laid out as
mmsegmentation's ISAHead."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from segattn.models.attention.interlaced_sparse import InterlacedSparseAttention
from segattn.models.heads.fcn import classifier, conv_bn_relu


class ISAHead(nn.Module):
    """``B x C_in x h x w -> {"out": B x K x h x w}``.

    ``in_conv`` (3x3 conv-BN-ReLU, C_in -> ``channels``), :class:`InterlacedSparseAttention` (``isa_channels``
    wide keys, ``down_factor`` groups), ``out_conv`` (1x1 conv-BN-ReLU on ``[isa; in_conv]``, 2 ``channels`` ->
    ``channels``), Dropout2d and a 1x1 classifier.
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, isa_channels: int = 256,
                 down_factor: Sequence[int] = (8, 8), dropout: float = 0.1):
        super().__init__()
        self.in_conv = conv_bn_relu(in_channels, channels)
        self.isa = InterlacedSparseAttention(channels, isa_channels, down_factor)
        self.out_conv = conv_bn_relu(2 * channels, channels, kernel_size=1)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.in_conv(x)
        return {"out": self.cls(self.out_conv(torch.cat([self.isa(x), x], 1)))}
