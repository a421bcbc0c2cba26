"""Criss-cross attention (CCNet, Huang et al., ICCV 2019)."""
import torch
from torch import nn
from torch.torch_version import TorchVersion

from segattn.models.attention.criss_cross_ops import criss_cross_ops
from segattn.models.attention.projection import project, stacked_weights
from segattn.models.attention.tracing import recording

__all__ = ["CrissCrossAttention"]

CHUNK = 24  # rows or columns of a map per batched matmul (the size of a chunk-wise temporary)


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, N, ., .) x (B, N, ., .) -> new contiguous (B, N, ., .): ``a[i, n] @ b[i, n]``, one batched call per
    image and ``CHUNK`` matrices (N runs over the rows or the columns of a map). An argument the matmul
    cannot read in place (strided columns of a map; the bf16 kernel takes fewer layouts than BLAS does
    in fp32) is copied a chunk at a time, not whole: measured 9 MB less at bf16, 512 x 97^2."""
    out = a.new_empty(*a.shape[:3], b.shape[-1])
    for i in range(out.shape[0]):
        for n0 in range(0, out.shape[1], CHUNK):
            part = slice(n0, n0 + CHUNK)
            torch.bmm(a[i, part], b[i, part], out=out[i, part])
    return out


def _add_cols(rows: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``rows[b, h, w] += (a[b, w] @ b[b, w])[h]``: a column-batched matmul added to a (B, H, W, D) tensor,
    ``CHUNK`` columns of one image at a time (the temporary is that large, not a whole map)."""
    for i in range(rows.shape[0]):
        for w0 in range(0, rows.shape[2], CHUNK):
            cols = slice(w0, w0 + CHUNK)
            rows[i, :, cols] += torch.bmm(a[i, cols], b[i, cols]).transpose(0, 1)
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


def _mT(t: torch.Tensor) -> torch.Tensor:
    """Transpose the matrices of a (B, N, ., .) tensor (a view)."""
    return t.transpose(2, 3)


def _attention(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k (B, H, W, C') -> weights over u's column (B, W, H, H) [b, w, u_h, i] (0 at i = u_h, u itself
    is counted in the row part) and over u's row (B, H, W, W) [b, h, u_w, j]; both in q's dtype."""
    row = _bmm(q, _mT(k))
    col = _bmm(_t(q), _mT(_t(k)))
    col.diagonal(0, 2, 3).fill_(float("-inf"))
    _softmax_cross(col, row)
    return col, row


def _aggregate(col: torch.Tensor, row: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sum over u's cross of weights times v: col (B, W, H, H), row (B, H, W, W), v (B, H, W, C) -> (B, H, W, C)."""
    return _add_cols(_bmm(row, v), col, _t(v))


def _aggregate_t(col: torch.Tensor, row: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The transposed aggregation (what each position receives from the crosses it lies on): -> (B, H, W, C)."""
    return _add_cols(_bmm(_mT(row), g), _mT(col), _t(g))


class _CrissCrossFunction(torch.autograd.Function):
    """out = x + gamma * agg(q, k, v) with [q; k] = W_qk x + b_qk, v = W_v x + b_v; saves x, W, b and the
    attention weights.

    Works on channels-last views (B, H, W, D) of every map: every row and every column is then a
    strided matrix that BLAS reads in place (an NCHW upstream gradient is copied once to that
    layout), and every matmul writes a new contiguous tensor, so each runs as one batched call (a
    strided output would make PyTorch loop over the matrices). The weights stay in the layouts
    their matmuls give: column part (B, W, H, H), row part (B, H, W, W).
    The projections (2C' + C channels per position, more than ``x`` itself) are not saved: backward
    recomputes them from ``x`` (which the graph holds anyway) in the dtype they had, unless
    ``recompute=False``; then they are kept on ``ctx`` (not as saved tensors, so that backward can
    free each as soon as it is used).
    Backward returns the gradients of ``x`` (channels-last: see ``_projection_grads``), ``W`` and ``b``
    through the projections.
    """

    @staticmethod
    def forward(ctx, x, qk, v, weight, bias, gamma, key_channels: int, need_weights: bool, recompute: bool):
        """x (B, C, H, W); qk (B, H, W, 2C'), v (B, H, W, C): the projections of x, computed without grad
        -> out (B, C, H, W) in x's memory format, and the weights (B, H, W, H + W) if ``need_weights``
        (else an empty tensor)."""
        with torch.autocast(x.device.type, enabled=False):
            work = x.dtype  # aggregation dtype: the residual stream's
            exact = torch.promote_types(torch.promote_types(qk.dtype, work), torch.float32)
            q, k = qk.to(exact).split(key_channels, -1)
            col, row = _attention(q, k)  # energies and softmax in >= fp32
            del q, k
            agg = _aggregate(col.to(work), row.to(work), v.to(work)).permute(0, 3, 1, 2)  # (B, C, H, W)
            out = torch.addcmul(x, agg, gamma.to(work), out=torch.empty_like(x))  # the next conv's layout: x's
            weights = torch.cat([_t(col), row], -1) if need_weights else x.new_empty(0)

        ctx.save_for_backward(x, weight, bias, col, row, gamma)
        ctx.kept = None if recompute else [qk, v]
        ctx.key_channels, ctx.projection_dtype = key_channels, qk.dtype
        ctx.mark_non_differentiable(weights)
        ctx.set_materialize_grads(False)  # no zero gradient for the weights
        return out, weights

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_weights):
        """Ordered so that v is freed before dv is made and q, k are made after g is freed: at most one
        full-size temporary besides dv joins the saved tensors at a time."""
        kept, ctx.kept = ctx.kept, None
        if grad_out is None:  # grads are not materialised: out did not reach the loss
            return (None,) * 9
        x, weight, bias, col, row, gamma = ctx.saved_tensors
        kc, work, exact, dtype = ctx.key_channels, x.dtype, col.dtype, ctx.projection_dtype
        with torch.autocast(grad_out.device.type, enabled=False):
            b, c, h, w = x.shape
            xp, wp, bp = x.to(dtype), weight.to(dtype), bias.to(dtype)
            g = grad_out.to(work).permute(0, 2, 3, 1).contiguous()  # (B, H, W, C), a view when channels-last

            # weights: dots of grad_out with the values on the cross; then the softmax backward
            v = (kept.pop() if kept else project(xp, wp[2 * kc :], bp[2 * kc :]).view(b, h, w, c)).to(work)
            d_row = _bmm(g, _mT(v)).to(exact)
            d_col = _bmm(_t(g), _mT(_t(v))).to(exact)
            del v
            dot = (d_row * row).sum(-1) + _t((d_col * col).sum(-1))  # (B, H, W)
            grad_gamma = dot.sum().reshape(1).to(gamma.dtype)
            scale = gamma.to(exact)
            d_row = d_row.sub_(dot.unsqueeze(-1)).mul_(row).mul_(scale)  # energy gradients
            d_col = d_col.sub_(_t(dot).unsqueeze(-1)).mul_(col).mul_(scale)

            # values: the transposed aggregation of grad_out, times gamma
            dv = _aggregate_t(col.to(work), row.to(work), g).mul_(gamma.to(work)).to(dtype)
            del g

            # queries and keys (C' channels each)
            qk = kept.pop() if kept else project(xp, wp[: 2 * kc], bp[: 2 * kc]).view(b, h, w, -1)
            q, k = qk.to(exact).split(kc, -1)
            del qk
            dq = _add_cols(_bmm(d_row, k), d_col, _t(k))
            dk = _add_cols(_bmm(_mT(d_row), q), _mT(d_col), _t(q))
            del d_row, d_col, q, k
            d_tokens = torch.cat([dq.to(dtype), dk.to(dtype), dv], -1)  # (B, H, W, 2C' + C): one product, one rounding
            del dq, dk, dv

            # through the projections: x (residual + W^T d), W and b
            grad_x, grad_weight = _projection_grads(grad_out, d_tokens, xp, wp)
            grad_bias = d_tokens.sum((0, 1, 2)).to(bias.dtype)  # CPU and CUDA sums of bf16/fp16 accumulate in fp32
        return grad_x, None, None, grad_weight.to(weight.dtype), grad_bias, grad_gamma, None, None, None


def _projection_grads(grad_out, d_tokens, x, weight):
    """Gradients through ``tokens = W x + b`` for d_tokens (B, H, W, D), x (B, C, H, W) and weight (D, C)
    in d_tokens' dtype: W's, and x's plus the residual ``grad_out`` (in grad_out's dtype). The input
    gradient is made as tokens (B, HW, C), the layout in which its matmul is fast (an NCHW product took
    twice as long here), so it is channels-last whatever x's format; the residual is accumulated by the
    matmul when the dtypes agree."""
    b, c, h, w = x.shape
    tokens = d_tokens.view(b, h * w, -1)
    grad_weight = torch.bmm(tokens.transpose(1, 2), x.flatten(2).transpose(1, 2)).sum(0)  # (B, D, C) -> (D, C)
    fused = grad_out.dtype == tokens.dtype
    per_image = weight.expand(b, -1, -1)
    if fused:
        residual = grad_out.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view in either format
        dx = torch.baddbmm(residual, tokens, per_image)
    else:
        dx = torch.bmm(tokens, per_image)
    dx = dx.view(b, h, w, c).permute(0, 3, 1, 2)
    return (dx if fused else grad_out + dx.to(grad_out.dtype)), grad_weight


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
    recomputed from ``x`` there) unless ``recompute=False`` (then backward frees q, k, v as it
    uses them); under export and tracing the block runs the standard ops of :mod:`criss_cross_ops`.
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
        kc = self.query_conv.out_channels
        with torch.no_grad():  # in the autocast dtype; two tensors, so that backward can free v before q, k
            qk = project(x, weight[: 2 * kc], bias[: 2 * kc]).view(b, h, w, 2 * kc)
            v = project(x, weight[2 * kc :], bias[2 * kc :]).view(b, h, w, c)
        out, attn = _criss_cross(x, qk, v, weight, bias, self.gamma, kc, return_attention, recompute)
        return (out, attn) if return_attention else out
