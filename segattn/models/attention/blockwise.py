"""Softmax attention over blocks of queries: ``softmax(scale * q k^T) v`` without storing the N x M map.

PyTorch's CPU ``scaled_dot_product_attention`` has a fused kernel only for equal query and value
widths; otherwise (DANet's PAM: C/8-wide keys, C-wide values; non-local ``gaussian``: C-wide keys,
C/2-wide values) it runs its math kernel, which keeps the whole map for backward (about 1 GB at
97x97). Here forward keeps only q, k and v, and backward recomputes each block's weights from them
(one extra ``q k^T`` and softmax, d/C of the work of the value products), as FlashAttention does,
with the wide matmuls at full width.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from segattn.models.attention.tracing import recording

BLOCK_ELEMENTS = 1 << 22  # energies of one block of queries (B x rows x M entries): 16 MB in fp32


def attend(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    """``softmax(scale * q k^T) v`` for ``q: B x N x d``, ``k: B x M x d``, ``v: B x M x C`` -> ``B x N x C``.

    SDPA where it has a kernel that never forms the map (CUDA, or equal widths) and under export, else the
    blockwise path.
    """
    if q.device.type == "cuda" or q.shape[-1] == v.shape[-1] or recording():
        return F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=scale).squeeze(1)
    return blockwise_attention(q, k, v, scale)


def blockwise_attention(q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
    """``softmax(scale * q k^T) v`` (shapes as :func:`attend`), energies and softmax in at least fp32,
    the value products in ``v``'s dtype; holds only ``q, k, v`` for backward."""
    with torch.autocast(q.device.type, enabled=False):
        return _BlockwiseAttention.apply(q, k, v, scale)


def _query_blocks(b: int, n: int, m: int) -> list[slice]:
    rows = max(1, BLOCK_ELEMENTS // (b * m))
    return [slice(start, start + rows) for start in range(0, n, rows)]


def _add_bmm(acc: Tensor, a: Tensor, b: Tensor) -> None:
    """``acc += a @ b`` (batched), in place when the dtypes agree."""
    if acc.dtype == a.dtype:
        acc.baddbmm_(a, b)
    else:
        acc.add_(torch.bmm(a, b))


class _BlockwiseAttention(torch.autograd.Function):
    """Forward and backward one block of queries at a time; backward recomputes the block's weights
    with the same softmax kernel (so they equal forward's), and the scale rides on the small ``q``."""

    @staticmethod
    def forward(ctx, q, k, v, scale: float):
        b, n, _ = q.shape
        exact = torch.promote_types(q.dtype, torch.float32)
        queries, keys_t = (q * scale).to(exact), k.to(exact).transpose(1, 2)
        out = v.new_empty(b, n, v.shape[-1])
        for rows in _query_blocks(b, n, k.shape[1]):
            weights = torch.softmax(torch.bmm(queries[:, rows], keys_t), -1)  # B x rows x M
            out[:, rows] = torch.bmm(weights.to(v.dtype), v)
        ctx.save_for_backward(q, k, v)
        ctx.scale = scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        q, k, v = ctx.saved_tensors
        scale = ctx.scale
        b, n, _ = q.shape
        exact = torch.promote_types(q.dtype, torch.float32)
        queries, keys = (q * scale).to(exact), k.to(exact)
        grad_q = torch.empty_like(queries)  # gradient of the scaled queries
        grad_k = torch.zeros_like(keys)
        grad_v = torch.zeros_like(v, dtype=torch.promote_types(v.dtype, exact))
        for rows in _query_blocks(b, n, k.shape[1]):
            g = grad_out[:, rows].to(v.dtype)
            weights = torch.softmax(torch.bmm(queries[:, rows], keys.transpose(1, 2)), -1)
            _add_bmm(grad_v, weights.to(v.dtype).transpose(1, 2), g)
            d_weights = torch.bmm(g, v.transpose(1, 2)).to(exact)  # B x rows x M
            d_energy = torch._softmax_backward_data(d_weights, weights, -1, exact)
            del weights, d_weights
            grad_q[:, rows] = torch.bmm(d_energy, keys)
            grad_k.baddbmm_(d_energy.transpose(1, 2), queries[:, rows])
        return grad_q.mul_(scale).to(q.dtype), grad_k.to(k.dtype), grad_v.to(v.dtype), None
