"""Object-contextual representations (Yuan et al., "Object-Contextual Representations for Semantic Segmentation",
ECCV 2020), laid out as mmseg's OCRHead blocks (``SpatialGatherModule``, ``ObjectAttentionBlock``)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from segattn.models.attention.key_query import KeyQueryAttention
from segattn.models.attention.projection import conv_module, conv_modules


def soft_region_features(feats: Tensor, region_logits: Tensor) -> Tensor:
    """``feats: B x C x h x w``, ``region_logits: B x K x h x w`` -> ``B x C x K x 1``: ``f_k = sum_i softmax_i(m_ki) x_i``,
    each object region's representation as the feature mean under its soft mask (softmax over positions)."""
    weights = region_logits.flatten(2).softmax(-1)  # B x K x hw
    return torch.bmm(feats.flatten(2), weights.transpose(1, 2).to(feats.dtype)).unsqueeze(-1)


class ObjectContextBlock(nn.Module):
    """``feats: B x C x h x w``, ``region_logits: B x K x h x w`` -> ``B x C x h x w``.

    Region representations ``f_k`` (:func:`soft_region_features`); pixel-region relation ``w_ik = softmax_k(q_i .
    k_k / sqrt(d))`` with ``q = phi(x)``, ``k = psi(f)`` (two 1x1 conv-BN-ReLU layers each, ``C -> d =
    key_channels``) and values ``delta(f)`` (1x1 conv-BN-ReLU, ``C -> d``); the object context ``y_i = rho(sum_k
    w_ik delta(f_k))`` (1x1 conv-BN-ReLU, ``d -> C``) and the output ``g([y_i; x_i])`` (1x1 conv-BN-ReLU, ``2C ->
    C``). ``attention.forward(..., return_attention=True)`` gives the ``B x hw x K`` pixel-region map.
    """

    def __init__(self, channels: int, key_channels: int):
        super().__init__()
        self.attention = KeyQueryAttention(conv_modules(channels, key_channels, 2), conv_modules(channels, key_channels, 2),
                                           conv_module(channels, key_channels), key_channels,
                                           out_project=conv_module(key_channels, channels))
        self.bottleneck = conv_module(2 * channels, channels)

    def forward(self, feats: Tensor, region_logits: Tensor) -> Tensor:
        context = self.attention(feats, soft_region_features(feats, region_logits))
        return self.bottleneck(torch.cat([context, feats], 1))
