"""Criss-cross attention (CCNet, Huang et al., ICCV 2019)."""
import torch
from torch import nn
from torch.torch_version import TorchVersion

from segattn.models.attention.criss_cross_ops import criss_cross_ops
from segattn.models.attention.projection import project, stacked_weights
from segattn.models.attention.tracing import recording

__all__ = ["CrissCrossAttention"]

COLUMN_CHUNK = 24  # columns per batched matmul whose result is added to a row-major map


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(B, H, W, D) -> (B*H, W, D): one matrix per image row (a view)."""
    return t.flatten(0, 1)


def _cols(t: torch.Tensor) -> torch.Tensor:
    """(B, H, W, D) image -> (W, H, D): one matrix per image column (a view)."""
    return t.transpose(0, 1)


def _row_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, H, ., .) x (B, H, ., .) -> (B, H, ., .): one matmul per image row, into a new contiguous tensor."""
    return torch.bmm(_rows(a), _rows(b)).view(*a.shape[:3], b.shape[-1])


def _col_bmm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out[i] = a[i] @ b[i]`` per image for (B, W, ., .) arguments (columns batched), ``out`` contiguous."""
    for i in range(out.shape[0]):
        torch.bmm(a[i], b[i], out=out[i])
    return out


def _add_cols(rows: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``rows[b, h, w] += (a[b, w] @ b[b, w])[h]``: a column-batched matmul added to a (B, H, W, D) tensor,
    ``COLUMN_CHUNK`` columns of one image at a time (the temporary is that large, not a whole map)."""
    for i in range(rows.shape[0]):
        for w0 in range(0, rows.shape[2], COLUMN_CHUNK):
            cols = slice(w0, w0 + COLUMN_CHUNK)
            rows[i, :, cols] += _cols(torch.bmm(a[i, cols], b[i, cols]))
    return rows


def _softmax_cross(col: torch.Tensor, row: torch.Tensor) -> None:
    """In place: one softmax per position over its column energies ``col`` (B, W, H, H) [b, w, u_h, i] and
    row energies ``row`` (B, H, W, W) [b, h, u_w, j] together (the H + W entries of its cross)."""
    peak = torch.maximum(_t(col.amax(-1)), row.amax(-1))  # (B, H, W)
    row.sub_(peak.unsqueeze(-1)).exp_()
    col.sub_(_t(peak).unsqueeze(-1)).exp_()
    inv = (row.sum(-1) + _t(col.sum(-1))).reciprocal_()
    row.mul_(inv.unsqueeze(-1))
    col.mul_(_t(inv).unsqueeze(-1))


def _t(t: torch.Tensor) -> torch.Tensor:
    """Swap the two spatial axes of a (B, H, W, ...) or (B, W, H, ...) tensor (a view)."""
    return t.transpose(1, 2)


def _attention(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k (B, H, W, C') -> weights over u's column (B, W, H, H) [b, w, u_h, i] (0 at i = u_h, u itself
    is counted in the row part) and over u's row (B, H, W, W) [b, h, u_w, j]; both in q's dtype."""
    b, h, w = q.shape[:3]
    row = _row_bmm(q, k.transpose(2, 3))
    col = _col_bmm(_t(q), _t(k).transpose(2, 3), q.new_empty(b, w, h, h))
    col.diagonal(0, 2, 3).fill_(float("-inf"))
    _softmax_cross(col, row)
    return col, row


def _aggregate(col: torch.Tensor, row: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sum over u's cross of weights times v: col (B, W, H, H), row (B, H, W, W), v (B, H, W, C) -> (B, H, W, C)."""
    return _add_cols(_row_bmm(row, v), col, _t(v))


def _aggregate_t(col: torch.Tensor, row: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The transposed aggregation (what each position receives from the crosses it lies on): -> (B, H, W, C)."""
    return _add_cols(_row_bmm(row.transpose(2, 3), g), col.transpose(2, 3), _t(g))


class _CrissCrossFunction(torch.autograd.Function):
    """out = x + gamma * agg(q, k, v) with [q; k; v] = W x + b; saves x, W, b and the attention weights.

    Works on channels-last views (B, H, W, D): every row and every column of a map is a strided
    matrix that BLAS reads in place, and every matmul writes a new contiguous tensor, so each runs
    as one batched call (a strided output would make PyTorch loop over the matrices). The weights
    stay in the layouts their matmuls give: column part (B, W, H, H), row part (B, H, W, W).
    The projection ``qkv`` (2C' + C channels per position, more than ``x`` itself) is not kept:
    backward recomputes it from ``x`` (which the graph holds anyway) in the dtype it had, and
    returns the gradients of ``x``, ``W`` and ``b`` through it.
    """

    @staticmethod
    def forward(ctx, x, qkv, weight, bias, gamma, key_channels: int, need_weights: bool, recompute: bool):
        """x (B, C, H, W), qkv (B, H, W, 2C' + C) = project(x, weight, bias), computed without grad
        -> out (B, C, H, W) in x's memory format, and the weights (B, H, W, H + W) if ``need_weights``
        (else an empty tensor). ``recompute=False`` keeps ``qkv`` for backward instead."""
        with torch.autocast(x.device.type, enabled=False):
            work = x.dtype  # aggregation dtype: the residual stream's
            exact = torch.promote_types(torch.promote_types(qkv.dtype, work), torch.float32)
            q, k, v = _split(qkv, key_channels, exact, work)
            col, row = _attention(q, k)  # energies and softmax in >= fp32
            del q, k
            agg = _aggregate(col.to(work), row.to(work), v).permute(0, 3, 1, 2)  # (B, C, H, W) channels-last
            del v
            out = torch.addcmul(x, agg, gamma.to(work), out=torch.empty_like(x))  # the next conv's layout: x's
            weights = torch.cat([_t(col), row], -1) if need_weights else x.new_empty(0)

        ctx.save_for_backward(x, weight, bias, col, row, gamma, *(() if recompute else (qkv,)))
        ctx.key_channels, ctx.qkv_dtype = key_channels, qkv.dtype
        ctx.mark_non_differentiable(weights)
        ctx.set_materialize_grads(False)  # no zero gradient for the weights
        return out, weights

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_weights):
        """Ordered so that at most one full-size temporary (g or v) joins the saved tensors at a time."""
        if grad_out is None:  # grads are not materialised: out did not reach the loss
            return None, None, None, None, None, None, None, None
        x, weight, bias, col, row, gamma, *kept = ctx.saved_tensors
        kc, work, exact, dtype = ctx.key_channels, x.dtype, col.dtype, ctx.qkv_dtype
        with torch.autocast(grad_out.device.type, enabled=False):
            b, c, h, w = x.shape
            xp, wp, bp = x.to(dtype), weight.to(dtype), bias.to(dtype)
            g = grad_out.to(work).permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)

            # weights: dots of grad_out with the (recomputed) values on the cross; then the softmax backward
            v = _projection(kept, xp, wp, bp, slice(2 * kc, None)).view(b, h, w, c).to(work)
            d_row = _row_bmm(g, v.transpose(2, 3)).to(exact)
            d_col = _col_bmm(_t(g), _t(v).transpose(2, 3), g.new_empty(b, w, h, h)).to(exact)
            del v
            dot = (d_row * row).sum(-1) + _t((d_col * col).sum(-1))  # (B, H, W)
            grad_gamma = dot.sum().reshape(1).to(gamma.dtype)
            scale = gamma.to(exact)
            d_row = d_row.sub_(dot.unsqueeze(-1)).mul_(row).mul_(scale)  # energy gradients
            d_col = d_col.sub_(_t(dot).unsqueeze(-1)).mul_(col).mul_(scale)

            # values: the transposed aggregation of grad_out, times gamma
            dv = _aggregate_t(col.to(work), row.to(work), g).mul_(gamma.to(work))
            del g

            # queries and keys (recomputed; C' channels each)
            q, k = _projection(kept, xp, wp, bp, slice(0, 2 * kc)).view(b, h, w, -1).to(exact).split(kc, -1)
            dq = _add_cols(_row_bmm(d_row, k), d_col, _t(k))
            dk = _add_cols(_row_bmm(d_row.transpose(2, 3), q), d_col.transpose(2, 3), _t(q))
            del d_row, d_col, q, k

            # through the projection: x (residual + W^T d_qkv), W and b
            d_tokens = torch.cat([dq.to(dtype), dk.to(dtype), dv.to(dtype)], -1).view(b, h * w, -1)
            del dq, dk, dv
            grad_x, grad_weight = _projection_grads(grad_out, d_tokens, xp, wp)
            grad_weight = grad_weight.to(weight.dtype)
            grad_bias = d_tokens.sum((0, 1)).to(bias.dtype)
        return grad_x, None, grad_weight, grad_bias, grad_gamma, None, None, None


def _projection_grads(grad_out, d_tokens, x, weight):
    """Gradients through ``tokens = W x + b`` for d_tokens (B, HW, D) and x (B, C, H, W), weight (D, C) in
    d_tokens' dtype: x's plus the residual ``grad_out`` (in grad_out's dtype and x's memory format), and W's.
    One matmul per image and no copies; the residual is accumulated by the matmul when the dtypes agree."""
    b, c, h, w = x.shape
    grad_weight = weight.new_zeros(weight.shape)
    for i in range(b):
        grad_weight.addmm_(d_tokens[i].t(), x[i].flatten(1).t())
    fused = grad_out.dtype == d_tokens.dtype
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        residual = grad_out.permute(0, 2, 3, 1).reshape(b, h * w, c) if fused else None  # a view when channels-last
        dx = _mm_add(residual, d_tokens, weight.expand(b, -1, -1)).view(b, h, w, c).permute(0, 3, 1, 2)
    else:
        residual = grad_out.reshape(b, c, h * w) if fused else None
        dx = _mm_add(residual, weight.t().expand(b, -1, -1), d_tokens.transpose(1, 2)).view(b, c, h, w)
    return (dx if fused else grad_out + dx.to(grad_out.dtype)), grad_weight


def _mm_add(residual, a, b):
    """``residual + a @ b`` (batched) in one call, or ``a @ b`` when there is no residual."""
    return torch.bmm(a, b) if residual is None else torch.baddbmm(residual, a, b)


def _projection(kept, x, weight, bias, channels: slice) -> torch.Tensor:
    """The ``channels`` of ``qkv``: the kept (B, H, W, D) tensor, or recomputed from x as (B, HW, D')."""
    return kept[0][..., channels] if kept else project(x, weight[channels], bias[channels])


def _split(qkv: torch.Tensor, kc: int, exact: torch.dtype, work: torch.dtype):
    """(B, H, W, 2C' + C) -> q, k in the exact dtype, v in the work dtype (views when no cast)."""
    return qkv[..., :kc].to(exact), qkv[..., kc : 2 * kc].to(exact), qkv[..., 2 * kc :].to(work)


# torch.compile (AOT autograd) returned wrong gradients through this function on torch 2.11, right
# ones on 2.14 (tests/test_criss_cross.py); releases before 2.14 run it eagerly inside compiled code.
COMPILE_SAFE = TorchVersion(torch.__version__) >= (2, 14)
_criss_cross = _CrissCrossFunction.apply if COMPILE_SAFE else torch.compiler.disable(_CrissCrossFunction.apply)


class CrissCrossAttention(nn.Module):
    """Criss-cross attention block of CCNet.

    For every position u, one softmax over the H + W - 1 positions on u's column and row (u
    counted once): ``H'_u = gamma * sum_{i in cross(u)} softmax_i(Q_u . K_i) V_i + H_u``.

    Shapes: ``x`` (B, C, H, W) -> output (B, C, H, W), in the memory format of ``x``;
    Q, K have C // 8 channels, V has C. Never builds the N x N map: the attention weights are
    (B, H, W, H + W), ``[..., :H]`` over u's column (the self entry there is 0) and ``[..., H:]``
    over u's row. Energies and softmax run in at least fp32 under fp16/bf16 autocast. A custom
    autograd function keeps only ``x`` and the weights for the backward pass (q, k, v are
    recomputed from ``x`` there) unless ``recompute=False``; under export and tracing the block
    runs the standard ops of :mod:`criss_cross_ops` instead.
    Parameter names follow the official release (``query_conv``, ``key_conv``, ``value_conv``,
    ``gamma``), so its checkpoints load as they are.
    """

    def __init__(self, in_channels: int):
        super().__init__()
        if in_channels < 8:
            raise ValueError(f"CrissCrossAttention needs in_channels >= 8 (query/key get in_channels // 8), got {in_channels}")
        self.in_channels = in_channels
        self.query_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.key_conv = nn.Conv2d(in_channels, in_channels // 8, 1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, return_attention: bool = False, recompute: bool = True):
        """x (B, C, H, W) -> out (B, C, H, W) [and weights (B, H, W, H + W) if return_attention].

        ``recompute=False`` keeps q/k/v for backward (2C' + C channels per position): the right choice for
        the last pass of a recurrence, whose backward comes first, when that memory is there anyway.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"CrissCrossAttention expected a (B, {self.in_channels}, H, W) tensor, got shape {tuple(x.shape)}")
        if recording():  # standard ops
            out, attn = criss_cross_ops(x, self.query_conv(x), self.key_conv(x), self.value_conv(x), self.gamma)
            return (out, attn) if return_attention else out
        b, c, h, w = x.shape
        weight, bias = stacked_weights((self.query_conv, self.key_conv, self.value_conv))
        with torch.no_grad():  # in the autocast dtype; backward recomputes it from x
            qkv = project(x, weight, bias).view(b, h, w, -1)  # (B, H, W, 2C' + C)
        out, attn = _criss_cross(x, qkv, weight, bias, self.gamma, self.query_conv.out_channels, return_attention, recompute)
        return (out, attn) if return_attention else out
