"""Key-query attention between two feature maps, laid out as mmseg's ``SelfAttentionBlock`` (the attention ISANet,
OCRNet and ANN share): ``out_i = W_out sum_j softmax_j(q_i . k_j / sqrt(d)) v_j``."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from segattn.models.attention.blockwise import attend


class KeyQueryAttention(nn.Module):
    """``query_feats: B x C_q x h x w``, ``key_feats: B x C_k x h' x w'`` -> ``B x C_out x h x w``.

    ``q = query_project(query_feats)`` and ``k = key_project(key_feats)`` (``d`` channels), ``v =
    value_project(key_feats)``; ``key_pool`` (optional, ``B x C x h' x w' -> B x C x M``) pools ``k`` and ``v`` to
    ``M`` key positions (ANN's pyramid pooling), otherwise the ``h'w'`` positions are the keys. The weights
    ``softmax_j(q_i . k_j / sqrt(d))`` (``B x hw x M``) mix the values; ``out_project`` (optional) maps the result.
    Passing one module as ``query_project`` and ``key_project`` shares it (ANN's APNB), and the state dict then
    holds it under both names, as mmseg's does.
    """

    def __init__(self, query_project: nn.Module, key_project: nn.Module, value_project: nn.Module,
                 key_channels: int, out_project: Optional[nn.Module] = None, key_pool: Optional[nn.Module] = None):
        super().__init__()
        self.query_project, self.key_project, self.value_project = query_project, key_project, value_project
        self.out_project, self.key_pool = out_project, key_pool
        self.scale = key_channels**-0.5

    def forward(self, query_feats: Tensor, key_feats: Tensor, return_attention: bool = False):
        """``out`` [and the ``B x hw x M`` weights when ``return_attention``]."""
        b, _, h, w = query_feats.shape
        q = self.query_project(query_feats).flatten(2).transpose(1, 2)
        k, v = self.key_project(key_feats), self.value_project(key_feats)
        if self.key_pool is not None:
            k, v = self.key_pool(k), self.key_pool(v)
        k, v = k.flatten(2).transpose(1, 2), v.flatten(2).transpose(1, 2)
        if return_attention:
            weights = (torch.bmm(q, k.transpose(1, 2)) * self.scale).softmax(-1)
            y = torch.bmm(weights, v)
        else:
            weights, y = None, attend(q.contiguous(), k.contiguous(), v.contiguous(), self.scale)
        out = y.transpose(1, 2).reshape(b, -1, h, w)
        if self.out_project is not None:
            out = self.out_project(out)
        return (out, weights) if return_attention else out
