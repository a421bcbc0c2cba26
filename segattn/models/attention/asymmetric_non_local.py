"""Asymmetric non-local blocks (Zhu et al., "Asymmetric Non-local Neural Networks for Semantic Segmentation",
ICCV 2019), laid out as mmseg's ANNHead blocks: keys and values pyramid-pooled to a few positions (APNB on one
map, AFNB fusing a low-level and a high-level map)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.attention.key_query import KeyQueryAttention
from segattn.models.attention.projection import conv_module
from segattn.models.attention.tracing import recording


class PyramidPooledKeys(nn.Module):
    """``B x C x h x w -> B x C x M``: adaptive average pooling to ``s x s`` for each ``s`` in ``pool_scales``,
    flattened and concatenated (``M = sum s^2``, e.g. 110 for (1, 3, 6, 8), whatever the input size)."""

    def __init__(self, pool_scales: Sequence[int]):
        super().__init__()
        self.pool_scales = tuple(int(s) for s in pool_scales)
        if not self.pool_scales or min(self.pool_scales) < 1:
            raise ValueError(f"key_pool_scales must be positive ints, got {pool_scales}")

    def forward(self, x: Tensor) -> Tensor:
        if recording():  # ONNX has no adaptive pooling of a size known only at run time: pool as two matmuls
            h, w = x.shape[-2:]
            return torch.cat([(_bins(h, s, x) @ x @ _bins(w, s, x).t()).flatten(2) for s in self.pool_scales], 2)
        return torch.cat([F.adaptive_avg_pool2d(x, s).flatten(2) for s in self.pool_scales], 2)


def _bins(n, s: int, like: Tensor) -> Tensor:
    """``s x n`` averaging matrix of adaptive pooling: bin ``a`` covers ``floor(a n / s) <= i < ceil((a + 1) n / s)``."""
    a = torch.arange(s, device=like.device).unsqueeze(1)
    i = torch.arange(n, device=like.device).unsqueeze(0)
    inside = ((i >= a * n // s) & (i < ((a + 1) * n + s - 1) // s)).to(like.dtype)
    return inside / inside.sum(1, keepdim=True)


def _asymmetric(query_channels: int, key_in_channels: int, key_channels: int, out_channels: int,
                pool_scales: Sequence[int], shared: bool) -> KeyQueryAttention:
    """Query / key: 1x1 conv-BN-ReLU to ``key_channels`` (one module when ``shared``); value: 1x1 conv with bias;
    keys and values pyramid-pooled; out: 1x1 conv with bias to ``out_channels``."""
    key = conv_module(key_in_channels, key_channels)
    query = key if shared else conv_module(query_channels, key_channels)
    return KeyQueryAttention(query, key, nn.Conv2d(key_in_channels, key_channels, 1), key_channels,
                             out_project=nn.Conv2d(key_channels, out_channels, 1), key_pool=PyramidPooledKeys(pool_scales))


class AsymmetricFusion(nn.Module):
    """AFNB: ``low: B x C_l x h x w``, ``high: B x C_h x h x w`` -> ``B x out_channels x h x w``.

    ``y_i = W_out sum_m softmax_m(theta(high_i) . P(phi(low))_m / sqrt(d)) P(g(low))_m`` with ``P`` the pyramid
    pooling (:class:`PyramidPooledKeys`), ``d = key_channels``; output ``BN(conv1x1([y; high]))`` (no ReLU).
    ``stages`` holds the one attention (mmseg's ``query_scales=(1,)``).
    """

    def __init__(self, low_channels: int, high_channels: int, key_channels: int, out_channels: int,
                 key_pool_scales: Sequence[int] = (1, 3, 6, 8)):
        super().__init__()
        self.stages = nn.ModuleList([_asymmetric(high_channels, low_channels, key_channels, out_channels,
                                                 key_pool_scales, shared=False)])
        self.bottleneck = conv_module(out_channels + high_channels, out_channels, relu=False)

    def forward(self, low: Tensor, high: Tensor) -> Tensor:
        context = sum(stage(high, low) for stage in self.stages)
        return self.bottleneck(torch.cat([context, high], 1))


class AsymmetricPyramidNonLocal(nn.Module):
    """APNB: ``x: B x C x h x w -> B x C x h x w``.

    ``y_i = W_out sum_m softmax_m(theta(x_i) . P(theta(x))_m / sqrt(d)) P(g(x))_m`` (query and key share ``theta``,
    1x1 conv-BN-ReLU to ``key_channels``); output ``ReLU(BN(conv1x1([y; x])))``. ``stages`` as :class:`AsymmetricFusion`.
    """

    def __init__(self, channels: int, key_channels: int, key_pool_scales: Sequence[int] = (1, 3, 6, 8)):
        super().__init__()
        self.stages = nn.ModuleList([_asymmetric(channels, channels, key_channels, channels, key_pool_scales, shared=True)])
        self.bottleneck = conv_module(2 * channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        context = sum(stage(x, x) for stage in self.stages)
        return self.bottleneck(torch.cat([context, x], 1))
