"""Non-local head (Wang et al., "Non-local Neural Networks", CVPR 2018), laid out as mmsegmentation's NLHead."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from segattn.models.attention.non_local import NonLocal2d
from segattn.models.heads.fcn import classifier, conv_bn_relu


class NonLocalHead(nn.Module):
    """``B x C_in x h x w -> {"out": B x K x h x w}``.

    3x3 conv-BN-ReLU (C_in -> ``channels``), ``NonLocal2d(channels, reduction, mode, sub_sample,
    use_sdpa=use_sdpa)``, 3x3 conv-BN-ReLU, concatenation with the head input, 3x3 conv-BN-ReLU
    bottleneck (C_in + ``channels`` -> ``channels``), Dropout2d and a 1x1 classifier.
    ``use_scale`` divides the embedded-gaussian affinities by ``sqrt(inter)`` (mmseg's default: True);
    ``activation``: ``relu`` or ``leaky_relu`` (0.01).
    """

    loss_weights: dict[str, float] = {}

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 512,
        mode: str = "embedded_gaussian",
        reduction: int = 2,
        sub_sample: bool = False,
        use_sdpa: bool = True,
        dropout: float = 0.1,
        use_scale: bool = True,
        activation: str = "relu",
    ):
        super().__init__()
        self.activation = activation
        self.conv_in = conv_bn_relu(in_channels, channels, activation=activation)
        self.nl_block = NonLocal2d(channels, reduction=reduction, mode=mode, sub_sample=sub_sample,
                                   use_scale=use_scale, use_sdpa=use_sdpa)
        self.conv_nl = conv_bn_relu(channels, channels, activation=activation)
        self.bottleneck = conv_bn_relu(in_channels + channels, channels, activation=activation)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        y = self.conv_nl(self.nl_block(self.conv_in(x)))
        return {"out": self.cls(self.bottleneck(torch.cat([x, y], dim=1)))}
