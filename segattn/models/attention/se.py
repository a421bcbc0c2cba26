"""Squeeze-and-Excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018)."""
from __future__ import annotations

from torchvision.ops import SqueezeExcitation as _TorchvisionSE


class SqueezeExcitation(_TorchvisionSE):
    """``out = x * sigmoid(W_2 ReLU(W_1 avgpool(x)))``; ``x: B x C x H x W -> B x C x H x W``.

    torchvision's block (1x1 convs ``fc1``: C -> S, ``fc2``: S -> C, with biases) with the paper's
    reduction ratio: ``S = max(C // reduction, 8)``. The floor of 8 only differs from the paper's
    ``C / r`` when ``C < 8 * reduction`` (e.g. ResNet-18's 64-channel stage: 8 instead of 4), where a
    4- or 1-wide bottleneck would throw most of the channel statistics away.
    """

    def __init__(self, channels: int, reduction: int = 16):
        if channels < 1 or reduction < 1:
            raise ValueError(f"SqueezeExcitation needs channels >= 1 and reduction >= 1, got {channels} and {reduction}")
        super().__init__(channels, max(channels // reduction, 8))
