"""DANet's position and channel attention (Fu et al., "Dual Attention Network for Scene Segmentation", CVPR 2019).

Parameter names follow the official release (``query_conv``, ``key_conv``, ``value_conv``, ``gamma``),
so its PAM/CAM weights load without renaming.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.attention.blockwise import blockwise_attention
from segattn.models.attention.projection import project_tokens
from segattn.models.attention.tracing import recording


class PositionAttention(nn.Module):
    """Position attention module (PAM): ``out_i = gamma * sum_j softmax_j(q_i . k_j) v_j + x_i``.

    ``q, k = W_q x, W_k x`` (1x1 convs, C -> C/8), ``v = W_v x`` (C -> C), no ``1/sqrt(d)`` scaling
    (as in the paper and the official code); ``gamma`` starts at zero, so the block starts as identity.
    Shapes: ``x: B x C x H x W -> B x C x H x W``; the affinity is ``B x HW x HW``.

    The HW x HW map is never stored. On CUDA the attention runs through ``scaled_dot_product_attention``
    with ``scale=1.0`` (``_position_attend``); its kernels need equal query and value widths except the
    memory-efficient one, so in fp16/bf16 (autocast) the value is split into C/8-wide heads that share
    q and k, which reaches the flash kernels; in fp32 the call is direct. Measured forward+backward
    (peak tensor memory / time) at 97x97, 512 channels: H100 fp32: explicit matmul
    1375 MiB / 8.0 ms, direct SDPA 83 MiB / 13.6 ms; H100 bf16: matmul 1355 MiB / 5.3 ms, direct
    51 MiB / 22.1 ms, split heads 69 MiB / 2.1 ms. On the CPU, SDPA runs its math kernel (which
    stores the map: 1054 MiB) for these widths, and split heads repeat ``q k^T`` per head (2.3x the
    time), so the CPU takes ``blockwise_attention`` (queries in blocks, weights recomputed in backward).
    """

    def __init__(self, in_channels: int):
        super().__init__()
        if in_channels < 8:
            raise ValueError(f"PositionAttention needs in_channels >= 8 (query/key have in_channels // 8), got {in_channels}")
        self.query_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.key_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, return_attention: bool = False):
        """``x -> out`` [and the ``B x HW x HW`` weights, formed explicitly, when ``return_attention``]."""
        b, c, h, w = x.shape
        d = self.query_conv.out_channels
        q, k, v = project_tokens(x, (self.query_conv, self.key_conv, self.value_conv)).split([d, d, c], -1)
        if return_attention:
            with torch.autocast(x.device.type, enabled=False):
                exact = torch.promote_types(q.dtype, torch.float32)
                weights = torch.bmm(q.to(exact), k.to(exact).transpose(1, 2)).softmax(-1)  # B x HW x HW
            out = torch.bmm(weights.to(v.dtype), v)
        elif x.device.type == "cuda" or recording():
            split = q.dtype in (torch.float16, torch.bfloat16)
            out = _position_attend(q, k, v, split_heads=split)  # B x HW x C
        else:  # SDPA's CPU kernel for unequal widths stores the map: see segattn.models.attention.blockwise
            out = blockwise_attention(q, k, v, scale=1.0)
        out = gated_residual(x, out.transpose(1, 2).reshape(b, c, h, w), self.gamma)
        return (out, weights) if return_attention else out


def gated_residual(x: Tensor, attended: Tensor, gamma: Tensor) -> Tensor:
    """``x + gamma * attended`` in the features' dtype and ``x``'s memory format (the next conv's layout).

    ``gamma`` (fp32, shape (1,)) is cast first: a 1-element tensor takes part in type promotion, so
    under autocast ``gamma * attended`` would turn the whole bf16/fp16 map into fp32.
    """
    return x + attended * gamma.to(attended.dtype)


def _position_attend(q: Tensor, k: Tensor, v: Tensor, split_heads: bool) -> Tensor:
    """``softmax(q k^T) v`` for ``q, k: B x N x d`` and ``v: B x N x C``, through SDPA.

    ``split_heads`` cuts ``v`` into ``C / d`` heads of width ``d`` attended with the same ``q`` and ``k``
    (same result: every output channel uses the same weights), so kernels that need equal widths apply.
    """
    b, n, d = q.shape
    c = v.shape[-1]
    if split_heads and c % d == 0:
        heads = c // d
        out = F.scaled_dot_product_attention(
            q.unsqueeze(1).expand(-1, heads, -1, -1),
            k.unsqueeze(1).expand(-1, heads, -1, -1),
            v.view(b, n, heads, d).transpose(1, 2),
            scale=1.0,
        )  # B x heads x N x d
        return out.transpose(1, 2).reshape(b, n, c)
    return F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0).squeeze(1)


class ChannelAttention(nn.Module):
    """Channel attention module (CAM): ``out = gamma * softmax(max_row(E) - E) X + x`` with ``E = X X^T``.

    ``X`` is ``x`` flattened to ``B x C x HW``; ``E`` is the ``B x C x C`` channel energy, and
    ``max_row(E) - E`` is the official code's rewrite of the energy before the softmax over each row.
    No parameters but ``gamma`` (zero at start, so the block starts as identity).
    Shapes: ``x: B x C x H x W -> B x C x H x W``.

    Under autocast the energy and the softmax are computed in fp32: the energies are sums over all HW
    positions, and bf16/fp16 rounding of ``E`` alone would move the softmax by whole units.
    """

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, return_attention: bool = False):
        """``x -> out`` [and the ``B x C x C`` weights when ``return_attention``]."""
        b, c, h, w = x.shape
        feats = x.flatten(2)  # B x C x HW
        with torch.autocast(x.device.type, enabled=False):
            full = feats.to(torch.promote_types(feats.dtype, torch.float32))  # fp16/bf16 -> fp32, fp64 kept
            energy = torch.bmm(full, full.transpose(1, 2))  # B x C x C
            attention = (energy.amax(-1, keepdim=True) - energy).softmax(-1)
        out = torch.bmm(attention.to(feats.dtype), feats)  # B x C x HW
        out = gated_residual(x, out.reshape(b, c, h, w), self.gamma)
        return (out, attention) if return_attention else out
