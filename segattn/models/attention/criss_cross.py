"""Criss-cross attention (CCNet, Huang et al., ICCV 2019)."""
import torch
from torch import nn
from torch.torch_version import TorchVersion

from segattn.models.attention.projection import project_tokens

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
    """out = x + gamma * agg(q, k, v); saves only qkv and the attention weights.

    Works on channels-last views (B, H, W, D) so that every row and every column of a map is
    a strided matrix that BLAS reads in place; both aggregations accumulate into one buffer.
    """

    @staticmethod
    def forward(ctx, x, qkv, gamma, key_channels: int):
        """x (B, C, H, W), qkv (B, H, W, 2C' + C) -> out (B, C, H, W), attn (B, H, W, H + W)."""
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

            out = torch.zeros_like(x, memory_format=torch.channels_last)
            out_t, weights = out.permute(0, 2, 3, 1), attn.to(work)
            _addmm_rows(out_t, weights[..., h:], v)
            _addmm_cols(out_t.transpose(1, 2), weights[..., :h].transpose(1, 2), v.transpose(1, 2))
            out.mul_(gamma.to(work)).add_(x)

        ctx.save_for_backward(qkv, attn, gamma)
        ctx.key_channels, ctx.work = key_channels, work
        ctx.mark_non_differentiable(attn)
        ctx.set_materialize_grads(False)  # no zero gradient for attn
        return out, attn

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_attn):
        if grad_out is None:  # grads are not materialised: out did not reach the loss
            return None, None, None, None
        qkv, attn, gamma = ctx.saved_tensors
        kc, work, exact = ctx.key_channels, ctx.work, attn.dtype
        with torch.autocast(grad_out.device.type, enabled=False):
            h = attn.shape[1]
            q, k, v = _split(qkv, kc, exact, work)
            g = grad_out.to(work).permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)
            d_qkv = g.new_zeros(qkv.shape)  # one gradient buffer for q, k and v

            # values: transposed aggregation of grad_out, times gamma
            weights, dv = attn.to(work), d_qkv[..., 2 * kc :]
            _addmm_rows(dv, weights[..., h:].transpose(2, 3), g)
            _addmm_cols(dv.transpose(1, 2), weights[..., :h].transpose(1, 2).transpose(2, 3), g.transpose(1, 2))
            dv.mul_(gamma.to(work))
            del weights

            # weights: dots of grad_out with the values on the cross; then the softmax backward
            d_attn = g.new_zeros(attn.shape)
            _addmm_rows(d_attn[..., h:], g, v.transpose(2, 3))
            _addmm_cols(d_attn[..., :h].transpose(1, 2), g.transpose(1, 2), v.transpose(1, 2).transpose(2, 3))
            d_attn = d_attn.to(exact)
            dot = (d_attn.unsqueeze(-2) @ attn.unsqueeze(-1)).squeeze(-1)  # (B, H, W, 1)
            grad_gamma = dot.sum().reshape(1).to(gamma.dtype)
            d_energy = d_attn.sub_(dot).mul_(attn).mul_(gamma.to(exact))

            # queries and keys, written straight into d_qkv when the dtypes agree
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
        return grad_out, d_qkv, grad_gamma, None


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

    Shapes: ``x`` (B, C, H, W) -> output (B, C, H, W), returned in channels-last memory format;
    Q, K have C // 8 channels, V has C. Never builds the N x N map: the attention weights are
    (B, H, W, H + W), ``[..., :H]`` over u's column (the self entry there is 0) and ``[..., H:]``
    over u's row. Energies and softmax run in at least fp32 under fp16/bf16 autocast. A custom
    autograd function keeps only q, k, v and the weights for the backward pass.
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
        qkv = project_tokens(x, (self.query_conv, self.key_conv, self.value_conv))  # (B, H*W, 2C' + C)
        out, attn = _criss_cross(x, qkv.view(b, h, w, -1), self.gamma, self.query_conv.out_channels)
        return (out, attn) if return_attention else out
