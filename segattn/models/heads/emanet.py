"""EMANet head (Li et al., "Expectation-Maximization Attention Networks for Semantic Segmentation", ICCV 2019),
laid out as mmsegmentation's EMAHead."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from segattn.models.attention.em_attention import EMAttention
from segattn.models.heads.fcn import activation_layer, classifier, conv_bn_relu


class EMAHead(nn.Module):
    """``B x C_in x h x w -> {"out": B x K x h x w}``.

    ``f = ema_in_conv(x)`` (3x3 conv-BN-ReLU, C_in -> ``ema_channels``); ``ema_mid_conv`` (1x1 conv with
    bias, frozen at mmcv's kaiming-normal fan-out init: it maps the non-negative ``f`` to both signs) then
    :class:`EMAttention` (``num_bases``, ``num_stages``, ``momentum``); ReLU, ``ema_out_conv`` (1x1 conv-BN); ``ReLU(f + that)``;
    ``bottleneck`` (3x3 conv-BN-ReLU, ``ema_channels`` -> ``channels``); with ``concat_input``,
    ``conv_cat`` (3x3 conv-BN-ReLU on ``[x; that]``, C_in + ``channels`` -> ``channels``); Dropout2d and
    a 1x1 classifier. ``activation``: ``relu`` or ``leaky_relu`` (0.01) for every ReLU.
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 256, ema_channels: int = 512,
                 num_bases: int = 64, num_stages: int = 3, momentum: float = 0.1, concat_input: bool = True,
                 dropout: float = 0.1, activation: str = "relu"):
        super().__init__()
        self.activation = activation
        self.act = activation_layer(activation)
        self.ema_in_conv = conv_bn_relu(in_channels, ema_channels, activation=activation)
        self.ema_mid_conv = nn.Conv2d(ema_channels, ema_channels, 1).requires_grad_(False)
        self.ema_module = EMAttention(ema_channels, num_bases=num_bases, num_stages=num_stages, momentum=momentum)
        self.ema_out_conv = nn.Sequential(nn.Conv2d(ema_channels, ema_channels, 1, bias=False), nn.BatchNorm2d(ema_channels))
        for conv in (self.ema_mid_conv, self.ema_out_conv[0]):  # mmcv ConvModule's init; the frozen mid conv keeps it
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
        self.bottleneck = conv_bn_relu(ema_channels, channels, activation=activation)
        self.conv_cat = conv_bn_relu(in_channels + channels, channels, activation=activation) if concat_input else None
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        feats = self.ema_in_conv(x)
        recon = self.ema_out_conv(self.act(self.ema_module(self.ema_mid_conv(feats))))
        out = self.bottleneck(self.act(feats + recon))
        if self.conv_cat is not None:
            out = self.conv_cat(torch.cat([x, out], 1))
        return {"out": self.cls(out)}
