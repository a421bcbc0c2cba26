"""Criss-cross attention (CCNet, Huang et al., ICCV 2019)."""
import torch
from torch import nn
from torch.torch_version import TorchVersion

from segattn.models.attention.criss_cross_ops import criss_cross_ops
from segattn.models.attention.projection import project, stacked_weights

__all__ = ["CrissCrossAttention"]


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(B, H, W, D) -> (B*H, W, D): one matrix per image row (a view)."""
    return t.flatten(0, 1)


def _addmm_rows(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """out[b, h] += a[b, h] @ b[b, h] for (B, H, ., .) tensors, one batched call over the rows."""
    _rows(out).baddbmm_(_rows(a), _rows(b))


def _addmm_cols(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """out[b, :, w] += a[b, :, w] @ b[b, :, w] for (B, ., W, .) tensors, batched over the columns.

    Arguments are (B, W, ., .) views; batch and column strides do not merge, so loop over B.
    """
    for i in range(out.shape[0]):
        out[i].baddbmm_(a[i], b[i])


class _CrissCrossFunction(torch.autograd.Function):
    """out = x + gamma * agg(q, k, v) with [q; k; v] = W x + b; saves x, W, b and the attention weights.

    Works on channels-last views (B, H, W, D) so that every row and every column of a map is
    a strided matrix that BLAS reads in place; both aggregations accumulate into one buffer.
    The projection ``qkv`` (2C' + C channels per position, more than ``x`` itself) is not kept:
    backward recomputes it from ``x`` (which the graph holds anyway) in the dtype it had, and
    returns the gradients of ``x``, ``W`` and ``b`` through it.
    """

    @staticmethod
    def forward(ctx, x, qkv, weight, bias, gamma, key_channels: int):
        """x (B, C, H, W), qkv (B, H, W, 2C' + C) = project(x, weight, bias), computed without grad
        -> out (B, C, H, W) in x's memory format, attn (B, H, W, H + W)."""
        with torch.autocast(x.device.type, enabled=False):
            b, h, w = qkv.shape[:3]
            work = x.dtype  # aggregation dtype: the residual stream's
            exact = torch.promote_types(torch.promote_types(qkv.dtype, work), torch.float32)
            q, k, v = _split(qkv, key_channels, exact, work)

            # energies [column part | row part], softmax in >= fp32
            attn = q.new_zeros(b, h, w, h + w)
            _addmm_rows(attn[..., h:], q, k.transpose(2, 3))
            _addmm_cols(attn[..., :h].transpose(1, 2), q.transpose(1, 2), k.transpose(1, 2).transpose(2, 3))
            attn[..., :h].diagonal(0, 1, 3).fill_(float("-inf"))  # u itself is counted in the row part
            attn = torch.softmax(attn, dim=-1)
            del q, k

            agg = torch.zeros_like(x, memory_format=torch.channels_last)
            agg_t, weights = agg.permute(0, 2, 3, 1), attn.to(work)
            _addmm_rows(agg_t, weights[..., h:], v)
            _addmm_cols(agg_t.transpose(1, 2), weights[..., :h].transpose(1, 2), v.transpose(1, 2))
            del weights, v
            out = torch.addcmul(x, agg, gamma.to(work), out=torch.empty_like(x))  # the next conv's layout: x's

        ctx.save_for_backward(x, weight, bias, attn, gamma)
        ctx.key_channels, ctx.qkv_dtype = key_channels, qkv.dtype
        ctx.mark_non_differentiable(attn)
        ctx.set_materialize_grads(False)  # no zero gradient for attn
        return out, attn

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_attn):
        """Ordered so that at most one full-size temporary (g, v or d_qkv) joins the saved tensors at a time."""
        if grad_out is None:  # grads are not materialised: out did not reach the loss
            return None, None, None, None, None, None
        x, weight, bias, attn, gamma = ctx.saved_tensors
        kc, work, exact, dtype = ctx.key_channels, x.dtype, attn.dtype, ctx.qkv_dtype
        with torch.autocast(grad_out.device.type, enabled=False):
            b, c, h, w = x.shape
            xp, wp, bp = x.to(dtype), weight.to(dtype), bias.to(dtype)
            g = grad_out.to(work).permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)

            # weights: dots of grad_out with the (recomputed) values on the cross; then the softmax backward
            v = project(xp, wp[2 * kc :], bp[2 * kc :]).view(b, h, w, c).to(work)
            d_attn = g.new_zeros(attn.shape)
            _addmm_rows(d_attn[..., h:], g, v.transpose(2, 3))
            _addmm_cols(d_attn[..., :h].transpose(1, 2), g.transpose(1, 2), v.transpose(1, 2).transpose(2, 3))
            del v
            d_attn = d_attn.to(exact)
            dot = (d_attn.unsqueeze(-2) @ attn.unsqueeze(-1)).squeeze(-1)  # (B, H, W, 1)
            grad_gamma = dot.sum().reshape(1).to(gamma.dtype)
            d_energy = d_attn.sub_(dot).mul_(attn).mul_(gamma.to(exact))

            # values: transposed aggregation of grad_out, times gamma, into one buffer for q, k and v
            d_qkv = g.new_zeros(b, h, w, weight.shape[0])
            weights, dv = attn.to(work), d_qkv[..., 2 * kc :]
            _addmm_rows(dv, weights[..., h:].transpose(2, 3), g)
            _addmm_cols(dv.transpose(1, 2), weights[..., :h].transpose(1, 2).transpose(2, 3), g.transpose(1, 2))
            dv.mul_(gamma.to(work))
            del weights, g

            # queries and keys (recomputed; C' channels each), written into d_qkv when the dtypes agree
            q, k = project(xp, wp[: 2 * kc], bp[: 2 * kc]).view(b, h, w, -1).to(exact).split(kc, -1)
            in_place = d_qkv.dtype == exact
            dq = d_qkv[..., :kc] if in_place else torch.zeros_like(q)
            dk = d_qkv[..., kc : 2 * kc] if in_place else torch.zeros_like(k)
            row, col = d_energy[..., h:], d_energy[..., :h].transpose(1, 2)
            _addmm_rows(dq, row, k)
            _addmm_cols(dq.transpose(1, 2), col, k.transpose(1, 2))
            _addmm_rows(dk, row.transpose(2, 3), q)
            _addmm_cols(dk.transpose(1, 2), col.transpose(2, 3), q.transpose(1, 2))
            if not in_place:
                d_qkv[..., :kc], d_qkv[..., kc : 2 * kc] = dq, dk
            del d_energy, row, col, dq, dk, q, k

            # through the projection: x (residual + W^T d_qkv), W and b
            d_tokens = d_qkv.view(b, h * w, -1).to(dtype)
            grad_x, grad_weight = _projection_grads(grad_out, d_tokens, xp, wp)
            grad_weight = grad_weight.to(weight.dtype)
            grad_bias = d_tokens.sum((0, 1)).to(bias.dtype)
        return grad_x, None, grad_weight, grad_bias, grad_gamma, None


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
        if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.jit.is_scripting():  # standard ops
            out, attn = criss_cross_ops(x, self.query_conv(x), self.key_conv(x), self.value_conv(x), self.gamma)
            return (out, attn) if return_attention else out
        b, c, h, w = x.shape
        weight, bias = stacked_weights((self.query_conv, self.key_conv, self.value_conv))
        with torch.no_grad():  # in the autocast dtype; backward recomputes it from x
            qkv = project(x, weight, bias).view(b, h, w, -1)  # (B, H, W, 2C' + C)
        out, attn = _criss_cross(x, qkv, weight, bias, self.gamma, self.query_conv.out_channels)
        return (out, attn) if return_attention else out
