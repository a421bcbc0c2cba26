"""Interlaced sparse self-attention (Huang et al., "Interlaced Sparse Self-Attention for Semantic Segmentation",
2019), laid out as mmseg's ISAHead block: ``global_relation`` then ``local_relation``."""
from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.attention.key_query import KeyQueryAttention
from segattn.models.attention.projection import conv_module, conv_modules, memory_format_of


def relation(channels: int, key_channels: int) -> KeyQueryAttention:
    """One ISA self-attention: two 1x1 conv-BN-ReLU layers for query and key (``channels -> key_channels``), a 1x1
    conv with bias for the value (``channels -> channels``) and a 1x1 conv-BN-ReLU ``out_project``."""
    return KeyQueryAttention(conv_modules(channels, key_channels, 2), conv_modules(channels, key_channels, 2),
                             nn.Conv2d(channels, channels, 1), key_channels, out_project=conv_module(channels, channels))


class InterlacedSparseAttention(nn.Module):
    """``x: B x C x H x W -> B x C x H x W``.

    With ``down_factor = (P_h, P_w)``, ``x`` is zero-padded (split evenly, the extra row / column after) to
    ``Q_h P_h x Q_w P_w``, ``Q = ceil(H / P)``, so that padded row ``r = q P_h + p``. The long-range relation
    attends within each of the ``P_h P_w`` groups of equal ``(p_h, p_w)`` (``Q_h Q_w`` positions ``P`` apart), then
    the short-range relation within each of the ``Q_h Q_w`` groups of equal ``(q_h, q_w)`` (a ``P_h x P_w`` block);
    the padding is cropped. Every position thus reaches every other in two steps. Each relation is a
    :func:`relation` (``key_channels`` wide keys) applied to its groups as a batch of ``B P_h P_w x C x Q_h x Q_w``
    (``B Q_h Q_w x C x P_h x P_w``) maps.
    """

    def __init__(self, channels: int, key_channels: int, down_factor: Sequence[int] = (8, 8)):
        super().__init__()
        self.down_factor = tuple(int(f) for f in down_factor)
        if len(self.down_factor) != 2 or min(self.down_factor) < 1:
            raise ValueError(f"InterlacedSparseAttention down_factor must be two positive ints, got {down_factor}")
        self.global_relation = relation(channels, key_channels)
        self.local_relation = relation(channels, key_channels)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        layout = memory_format_of(x)
        ph, pw = self.down_factor
        qh, qw = (h + ph - 1) // ph, (w + pw - 1) // pw  # integer size arithmetic: exporters keep it symbolic
        pad_h, pad_w = qh * ph - h, qw * pw - w
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        x = x.reshape(b, c, qh, ph, qw, pw).permute(0, 3, 5, 1, 2, 4).reshape(-1, c, qh, qw)
        x = self.global_relation(x, x)
        x = x.reshape(b, ph, pw, c, qh, qw).permute(0, 4, 5, 3, 1, 2).reshape(-1, c, ph, pw)
        x = self.local_relation(x, x)
        x = x.reshape(b, qh, qw, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, c, qh * ph, qw * pw)
        return x[:, :, pad_h // 2:pad_h // 2 + h, pad_w // 2:pad_w // 2 + w].contiguous(memory_format=layout)
