"""Convolutional Block Attention Module (Woo et al., "CBAM", ECCV 2018)."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class CBAM(nn.Module):
    """``x' = sigmoid(MLP(avg(x)) + MLP(max(x))) * x``, then ``out = sigmoid(conv([mean_c x'; max_c x'])) * x'``.

    Channel gate first: ``mlp`` is shared by the average- and max-pooled ``B x C x 1 x 1`` vectors
    (1x1 convs C -> ``max(C // reduction, 8)`` -> C with ReLU between, as in ``SqueezeExcitation``).
    Spatial gate second: ``spatial`` is a ``kernel_size`` x ``kernel_size`` conv (2 -> 1, padding
    ``kernel_size // 2``, no bias) on the channel-wise mean and max maps, in the paper's order
    [avg; max]. (The official release adds a BatchNorm after this conv; the paper does not have it.)
    Shapes: ``x: B x C x H x W -> B x C x H x W``; gates ``B x C x 1 x 1`` and ``B x 1 x H x W``.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"CBAM kernel_size must be a positive odd number (same-size output), got {kernel_size}")
        if channels < 1 or reduction < 1:
            raise ValueError(f"CBAM needs channels >= 1 and reduction >= 1, got {channels} and {reduction}")
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        channel_gate = torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))
        x = x * channel_gate
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))
