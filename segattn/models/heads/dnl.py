"""DNL head (Yin et al., "Disentangled Non-Local Neural Networks", ECCV 2020), laid out as mmsegmentation's DNLHead."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from segattn.models.attention.disentangled_non_local import DisentangledNonLocal2d
from segattn.models.heads.fcn import classifier, conv_bn_relu


class DNLHead(nn.Module):
    """``B x C_in x h x w -> {"out": B x K x h x w}``.

    3x3 conv-BN-ReLU (C_in -> ``channels``), ``DisentangledNonLocal2d(channels, reduction, mode, use_scale,
    temperature, use_sdpa)``, 3x3 conv-BN-ReLU, concatenation with the head input, 3x3 conv-BN-ReLU
    bottleneck (C_in + ``channels`` -> ``channels``), Dropout2d and a 1x1 classifier. ``activation``:
    ``relu`` or ``leaky_relu`` (0.01).
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, mode: str = "embedded_gaussian",
                 reduction: int = 2, use_scale: bool = True, temperature: float = 0.05, use_sdpa: bool = True,
                 dropout: float = 0.1, activation: str = "relu"):
        super().__init__()
        self.activation = activation
        self.conv_in = conv_bn_relu(in_channels, channels, activation=activation)
        self.dnl_block = DisentangledNonLocal2d(channels, reduction=reduction, mode=mode, use_scale=use_scale,
                                                temperature=temperature, use_sdpa=use_sdpa)
        self.conv_dnl = conv_bn_relu(channels, channels, activation=activation)
        self.bottleneck = conv_bn_relu(in_channels + channels, channels, activation=activation)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        y = self.conv_dnl(self.dnl_block(self.conv_in(x)))
        return {"out": self.cls(self.bottleneck(torch.cat([x, y], dim=1)))}
