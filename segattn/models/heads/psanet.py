"""PSANet head (Zhao et al., "PSANet: Point-wise Spatial Attention Network for Scene Parsing", ECCV 2018), laid out
as mmsegmentation's PSAHead (its compiled PSAMask replaced by a gather: runs on CPU and exports)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from segattn.models.attention.point_wise_spatial import PointwiseSpatialAttention
from segattn.models.heads.fcn import classifier, conv_bn_relu


class PSAHead(nn.Module):
    """``B x C_in x h x w -> {"out": B x K x h x w}``.

    :class:`PointwiseSpatialAttention` (``channels`` wide, ``mask_size`` window, ``psa_type``, ``compact``,
    ``shrink_factor``, ``normalization_factor``, ``psa_softmax``, ``align_corners``) back to C_in, concatenation
    with the input, ``bottleneck`` (3x3 conv-BN-ReLU, 2 C_in -> ``channels``), Dropout2d and a 1x1 classifier.
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, mask_size: Sequence[int] = (97, 97),
                 psa_type: str = "bi-direction", compact: bool = False, shrink_factor: int = 2,
                 normalization_factor: float = 1.0, psa_softmax: bool = True, align_corners: bool = False,
                 dropout: float = 0.1):
        super().__init__()
        self.psa = PointwiseSpatialAttention(in_channels, channels, mask_size, psa_type, compact, shrink_factor,
                                             normalization_factor, psa_softmax, align_corners)
        self.bottleneck = conv_bn_relu(2 * in_channels, channels)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": self.cls(self.bottleneck(torch.cat([x, self.psa(x)], 1)))}
