"""Criss-cross attention (CCNet, Huang et al., ICCV 2019)."""
import torch
from torch import nn
from torch.torch_version import TorchVersion

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


def _cross_dots(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """out[..., u, :] += a_u . b_i for every i on u's cross; out (B, H, W, H + W), a, b (B, H, W, D)."""
    h = a.shape[1]
    _addmm_rows(out[..., h:], a, b.transpose(2, 3))
    _addmm_cols(out[..., :h].transpose(1, 2), a.transpose(1, 2), b.transpose(1, 2).transpose(2, 3))


def _aggregate(out: torch.Tensor, weights: torch.Tensor, values: torch.Tensor) -> None:
    """out_u += sum over u's cross of weights[u, i] values_i; out, values (B, H, W, D), weights (B, H, W, H + W)."""
    h = values.shape[1]
    _addmm_rows(out, weights[..., h:], values)
    _addmm_cols(out.transpose(1, 2), weights[..., :h].transpose(1, 2), values.transpose(1, 2))


def _scatter(out: torch.Tensor, weights: torch.Tensor, values: torch.Tensor) -> None:
    """The transpose of :func:`_aggregate`: out_i += sum over the u whose cross holds i of weights[u, i] values_u."""
    h = values.shape[1]
    _addmm_rows(out, weights[..., h:].transpose(2, 3), values)
    _addmm_cols(out.transpose(1, 2), weights[..., :h].transpose(1, 2).transpose(2, 3), values.transpose(1, 2))


class _CrissCrossFunction(torch.autograd.Function):
    """out = x + gamma * agg(q, k, v) with [q; k; v] = W x + b; saves x, W, b and the attention weights.

    Works on channels-last views (B, H, W, D) so that every row and every column of a map is
    a strided matrix that BLAS reads in place; both aggregations accumulate into one buffer.
    The projection ``qkv`` (2C' + C channels per position, more than ``x`` itself) is not kept:
    backward recomputes q and k from ``x`` (which the graph holds anyway) in the dtype they had,
    and needs no v (see :meth:`backward`); it returns the gradients of ``x``, ``W`` and ``b``.
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
            _cross_dots(attn, q, k)
            attn[..., :h].diagonal(0, 1, 3).fill_(float("-inf"))  # u itself is counted in the row part
            attn = torch.softmax(attn, dim=-1)
            del q, k

            agg = torch.zeros_like(x, memory_format=torch.channels_last)
            _aggregate(agg.permute(0, 2, 3, 1), attn.to(work), v)
            del v
            out = torch.addcmul(x, agg, gamma.to(work), out=torch.empty_like(x))  # the next conv's layout: x's

        ctx.save_for_backward(x, weight, bias, attn, gamma)
        ctx.key_channels, ctx.qkv_dtype = key_channels, qkv.dtype
        ctx.mark_non_differentiable(attn)
        ctx.set_materialize_grads(False)  # no zero gradient for attn
        return out, attn

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_attn):
        """The values' projection ``v = W_v x + b_v`` is never rebuilt: ``g_u . v_i = (W_v^T g_u) . x_i + g_u . b_v``,
        its x-gradient is ``gamma W_v^T (scattered g)`` = ``gamma * scatter(W_v^T g)`` and its W-gradient
        ``gamma g^T agg(x)``, so backward costs the forward's matmuls plus the small q/k (C' channels)."""
        if grad_out is None:  # grads are not materialised: out did not reach the loss
            return None, None, None, None, None, None
        x, weight, bias, attn, gamma = ctx.saved_tensors
        kc, work, exact, dtype = ctx.key_channels, x.dtype, attn.dtype, ctx.qkv_dtype
        with torch.autocast(grad_out.device.type, enabled=False):
            w_qk, w_v = weight.to(dtype).split([2 * kc, weight.shape[0] - 2 * kc])
            b_qk, b_v = bias.to(dtype).split([2 * kc, bias.shape[0] - 2 * kc])
            g = grad_out.to(work).permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)
            xt = x.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C): a view of a channels-last x
            weights = attn.to(work)

            # values' parameters: dW_v = gamma g^T agg(x), db_v = gamma sum(g) (each cross's weights sum to 1)
            agg_x = torch.zeros_like(xt)
            _aggregate(agg_x, weights, xt)
            grad_w_v = g.flatten(0, 2).to(dtype).t() @ agg_x.flatten(0, 2).to(dtype)  # (C, C), times gamma below
            del agg_x
            grad_b_v = g.sum((0, 1, 2))
            offset = (g @ b_v.to(work)).unsqueeze(-1)  # (B, H, W, 1): g_u . b_v
            gv = (g.to(dtype) @ w_v).to(work)  # (B, H, W, C): W_v^T g_u
            del g

            # weights: g_u . v_i on the cross, from gv and x; then the softmax backward
            d_attn = gv.new_zeros(attn.shape)
            _cross_dots(d_attn, gv, xt)
            d_attn = d_attn.add_(offset).to(exact)
            dot = (d_attn.unsqueeze(-2) @ attn.unsqueeze(-1)).squeeze(-1)  # (B, H, W, 1)
            grad_gamma = dot.sum().reshape(1).to(gamma.dtype)
            d_energy = d_attn.sub_(dot).mul_(attn).mul_(gamma.to(exact))
            del d_attn, dot

            # queries and keys, recomputed from x (C' channels each), and their projection's gradients
            qk = (xt.to(dtype) @ w_qk.t() + b_qk).to(exact)
            q, k = qk.split(kc, -1)
            d_qk = torch.zeros_like(qk)
            d_q, d_k = d_qk.split(kc, -1)
            _aggregate(d_q, d_energy, k)
            _scatter(d_k, d_energy, q)
            del qk, q, k, d_energy
            d_qk = d_qk.to(dtype)
            grad_w_qk = d_qk.flatten(0, 2).t() @ xt.to(dtype).flatten(0, 2)
            dx = (d_qk @ w_qk).to(work)  # (B, H, W, C)
            grad_b_qk = d_qk.sum((0, 1, 2))
            del d_qk, xt

            # x through the values: gamma W_v^T (scattered g) = scatter(gamma * gv)
            _scatter(dx, weights, gv.mul_(gamma.to(work)))
            del gv, weights
            grad_weight = torch.cat([grad_w_qk.to(weight.dtype), grad_w_v.to(weight.dtype) * gamma.to(weight.dtype)])
            grad_bias = torch.cat([grad_b_qk.to(bias.dtype), grad_b_v.to(bias.dtype) * gamma.to(bias.dtype)])
            grad_x = grad_out + dx.permute(0, 3, 1, 2).to(grad_out.dtype)  # in grad_out's memory format
        return grad_x, None, grad_weight, grad_bias, grad_gamma, None


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
    autograd function keeps only ``x`` and the weights for the backward pass (q and k are
    recomputed from ``x`` there, v is not needed).
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
        b, c, h, w = x.shape
        weight, bias = stacked_weights((self.query_conv, self.key_conv, self.value_conv))
        with torch.no_grad():  # in the autocast dtype; backward recomputes it from x
            qkv = project(x, weight, bias).view(b, h, w, -1)  # (B, H, W, 2C' + C)
        out, attn = _criss_cross(x, qkv, weight, bias, self.gamma, self.query_conv.out_channels)
        return (out, attn) if return_attention else out
