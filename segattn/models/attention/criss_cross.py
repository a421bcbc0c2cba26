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
    def forward(ctx, x, qkv, weight, bias, gamma, key_channels: int, need_weights: bool):
        """x (B, C, H, W), qkv (B, H, W, 2C' + C) = project(x, weight, bias), computed without grad
        -> out (B, C, H, W) in x's memory format, and the weights (B, H, W, H + W) if ``need_weights``
        (else an empty tensor)."""
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

        ctx.save_for_backward(x, weight, bias, col, row, gamma)
        ctx.key_channels, ctx.qkv_dtype = key_channels, qkv.dtype
        ctx.mark_non_differentiable(weights)
        ctx.set_materialize_grads(False)  # no zero gradient for the weights
        return out, weights

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_weights):
        """Ordered so that at most one full-size temporary (g or v) joins the saved tensors at a time."""
        if grad_out is None:  # grads are not materialised: out did not reach the loss
            return None, None, None, None, None, None, None
        x, weight, bias, col, row, gamma = ctx.saved_tensors
        kc, work, exact, dtype = ctx.key_channels, x.dtype, col.dtype, ctx.qkv_dtype
        with torch.autocast(grad_out.device.type, enabled=False):
            b, c, h, w = x.shape
            xp, wp, bp = x.to(dtype), weight.to(dtype), bias.to(dtype)
            g = grad_out.to(work).permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)

            # weights: dots of grad_out with the (recomputed) values on the cross; then the softmax backward
            v = project(xp, wp[2 * kc :], bp[2 * kc :]).view(b, h, w, c).to(work)
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
            q, k = project(xp, wp[: 2 * kc], bp[: 2 * kc]).view(b, h, w, -1).to(exact).split(kc, -1)
            dq = _add_cols(_row_bmm(d_row, k), d_col, _t(k))
            dk = _add_cols(_row_bmm(d_row.transpose(2, 3), q), d_col.transpose(2, 3), _t(q))
            del d_row, d_col, q, k

            # through the projection: x (residual + W^T d_qkv), W and b
            d_tokens = [t.reshape(b, h * w, -1).to(dtype) for t in (dq, dk, dv)]
            del dq, dk, dv
            grad_x, grad_weight = _projection_grads(grad_out, d_tokens, xp, wp.split([kc, kc, c]))
            grad_weight = grad_weight.to(weight.dtype)
            grad_bias = torch.cat([t.sum((0, 1)) for t in d_tokens]).to(bias.dtype)
        return grad_x, None, grad_weight, grad_bias, grad_gamma, None, None


def _projection_grads(grad_out, d_tokens, x, weights):
    """Gradients through ``tokens_i = W_i x + b_i`` for d_tokens[i] (B, HW, D_i), x (B, C, H, W) and
    weights[i] (D_i, C) in d_tokens' dtype: x's plus the residual ``grad_out`` (in grad_out's dtype and
    x's memory format), and the stacked W's. One matmul per part (per image for W) and no copies; the
    residual is accumulated by the matmuls when the dtypes agree."""
    b, c, h, w = x.shape
    grad_weight = weights[0].new_zeros(sum(wi.shape[0] for wi in weights), c)
    for d, gw in zip(d_tokens, grad_weight.split([wi.shape[0] for wi in weights])):
        for i in range(b):
            gw.addmm_(d[i].t(), x[i].flatten(1).t())
    fused = grad_out.dtype == d_tokens[0].dtype
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if channels_last:  # dx as (B, HW, C): a view of a channels-last map
        products = [(d, wi.expand(b, -1, -1)) for d, wi in zip(d_tokens, weights)]
        residual = grad_out.permute(0, 2, 3, 1).reshape(b, h * w, c) if fused else None
    else:  # dx as (B, C, HW)
        products = [(wi.t().expand(b, -1, -1), d.transpose(1, 2)) for d, wi in zip(d_tokens, weights)]
        residual = grad_out.reshape(b, c, h * w) if fused else None
    dx = torch.bmm(*products[0]) if residual is None else torch.baddbmm(residual, *products[0])
    for pair in products[1:]:
        dx.baddbmm_(*pair)
    dx = dx.view(b, h, w, c).permute(0, 3, 1, 2) if channels_last else dx.view(b, c, h, w)
    return (dx if fused else grad_out + dx.to(grad_out.dtype)), grad_weight


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
    recomputed from ``x`` there).
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

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """x (B, C, H, W) -> out (B, C, H, W) [and weights (B, H, W, H + W) if return_attention]."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"CrissCrossAttention expected a (B, {self.in_channels}, H, W) tensor, got shape {tuple(x.shape)}")
        if recording():  # standard ops
            out, attn = criss_cross_ops(x, self.query_conv(x), self.key_conv(x), self.value_conv(x), self.gamma)
            return (out, attn) if return_attention else out
        b, c, h, w = x.shape
        weight, bias = stacked_weights((self.query_conv, self.key_conv, self.value_conv))
        with torch.no_grad():  # in the autocast dtype; backward recomputes it from x
            qkv = project(x, weight, bias).view(b, h, w, -1)  # (B, H, W, 2C' + C)
        out, attn = _criss_cross(x, qkv, weight, bias, self.gamma, self.query_conv.out_channels, return_attention)
        return (out, attn) if return_attention else out
