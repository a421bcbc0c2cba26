"""Criss-cross attention in standard ops (matmul, masked fill, softmax): the path export and scripting take.

Same values as the training path of :mod:`segattn.models.attention.criss_cross`, whose custom autograd
function neither ONNX nor TorchScript can record. Heights and widths stay symbolic, so an exported
graph takes any input size.
"""
import torch


def criss_cross_ops(x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gamma: torch.Tensor):
    """x (B, C, H, W), q and k (B, C', H, W), v (B, C, H, W), gamma (1,) -> out (B, C, H, W), attn (B, H, W, H + W).

    ``attn[..., :H]`` are the weights over u's column (u itself -inf before the softmax, so 0),
    ``attn[..., H:]`` over u's row; ``out = x + gamma * (column part + row part)``.
    """
    h = x.shape[2]
    exact = torch.promote_types(q.dtype, torch.float32)  # energies and softmax in >= fp32
    q, k = q.to(exact), k.to(exact)
    column = q.permute(0, 3, 2, 1) @ k.permute(0, 3, 1, 2)  # (B, W, H, H): [b, w, u_h, i]
    index = torch.arange(h, device=x.device)
    self_entry = index.unsqueeze(1) == index.unsqueeze(0)  # (H, H)
    column = column.masked_fill(self_entry, float("-inf")).permute(0, 2, 1, 3)  # (B, H, W, H)
    row = q.permute(0, 2, 3, 1) @ k.permute(0, 2, 1, 3)  # (B, H, W, W): [b, h, u_w, j]
    attn = torch.softmax(torch.cat([column, row], dim=-1), dim=-1)
    weights = attn.to(v.dtype)
    along_column = weights[..., :h].permute(0, 2, 1, 3) @ v.permute(0, 3, 2, 1)  # (B, W, H, C)
    along_row = weights[..., h:] @ v.permute(0, 2, 3, 1)  # (B, H, W, C)
    agg = along_column.permute(0, 3, 2, 1) + along_row.permute(0, 3, 1, 2)
    return x + gamma.to(x.dtype) * agg.to(x.dtype), attn
