"""Point-wise spatial attention (Zhao et al., "PSANet: Point-wise Spatial Attention Network for Scene Parsing",
ECCV 2018), laid out as mmseg's PSAHead, with mmcv's compiled ``PSAMask`` written as a gather."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.attention.projection import conv_module, memory_format_of
from segattn.models.attention.tracing import recording

PSA_TYPES = ("collect", "distribute", "bi-direction")


def psa_mask(mask: Tensor, mask_size: Sequence[int], mode: str) -> Tensor:
    """mmcv ``PSAMask``: ``mask: B x (M_h M_w) x h x w`` -> ``B x hw x h x w`` (zeros outside each window).

    ``mask[:, (a, b), p]`` is position ``p``'s weight for the offset ``(a - (M_h - 1) // 2, b - (M_w - 1) // 2)``.
    ``collect``: ``out[:, q, p] = mask[:, q - p + half, p]`` (what ``p`` gathers from ``q``); ``distribute``: the
    transpose, ``out[:, p, q]`` of the same value (what ``p`` sends to ``q``); 0 where the offset leaves the window.
    """
    if mode not in ("collect", "distribute"):
        raise ValueError(f"psa_mask mode must be 'collect' or 'distribute', got {mode!r}")
    b, channels, h, w = mask.shape
    mh, mw = (int(s) for s in mask_size)
    if channels != mh * mw:
        raise ValueError(f"psa_mask: mask has {channels} channels, mask_size {mh}x{mw} needs {mh * mw}")
    rows, cols = torch.arange(h, device=mask.device), torch.arange(w, device=mask.device)
    dr = rows.view(-1, 1) - rows.view(1, -1) + (mh - 1) // 2  # [q_row, p_row]: mask row of that offset
    dc = cols.view(-1, 1) - cols.view(1, -1) + (mw - 1) // 2
    inside = ((dr >= 0) & (dr < mh)).view(h, 1, h, 1) & ((dc >= 0) & (dc < mw)).view(1, w, 1, w)
    index = dr.clamp(0, mh - 1).view(h, 1, h, 1) * mw + dc.clamp(0, mw - 1).view(1, w, 1, w)
    index = torch.where(inside, index, torch.full_like(index, mh * mw)).reshape(h * w, h * w)  # [q, p]; M: the zero
    padded = torch.cat([mask.flatten(2), mask.new_zeros(b, 1, h * w)], 1)  # B x (M + 1) x hw
    out = padded.gather(1, index.unsqueeze(0).expand(b, -1, -1))  # out[:, q, p] = padded[:, index[q, p], p]
    if mode == "distribute":
        out = out.transpose(1, 2)
    return out.reshape(b, h * w, h, w)


def _resize_weights(n_in, n_out, align: Tensor, like: Tensor) -> Tensor:
    """``n_out x n_in`` weights of 1-d bilinear resizing as ``F.interpolate`` computes it, with ``align`` (a bool
    tensor) choosing align_corners: sizes and the choice may be symbolic under export."""
    n_in, n_out = torch.as_tensor(n_in, device=like.device), torch.as_tensor(n_out, device=like.device)
    dst = torch.arange(n_out, device=like.device).to(like.dtype)
    aligned = dst * (n_in - 1).to(like.dtype) / (n_out - 1).clamp(min=1).to(like.dtype)
    half_pixel = ((dst + 0.5) * n_in.to(like.dtype) / n_out.to(like.dtype) - 0.5).clamp(min=0)
    src = torch.where(align, aligned, half_pixel)
    low = torch.minimum(src.floor().long(), n_in - 1)
    high = torch.minimum(low + 1, n_in - 1)
    frac = (src - low.to(like.dtype)).unsqueeze(1)
    cols = torch.arange(n_in, device=like.device)
    return (cols == low.unsqueeze(1)).to(like.dtype) * (1 - frac) + (cols == high.unsqueeze(1)).to(like.dtype) * frac


def _resize(x: Tensor, size, align, exportable: bool) -> Tensor:
    """Bilinear resize of ``B x C x h x w`` to ``size``; ``exportable``: as two matmuls whose sizes and align_corners
    (a bool tensor) stay symbolic under export, else ``F.interpolate``."""
    if not exportable:
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=bool(align))
    align = torch.as_tensor(align, device=x.device)
    return _resize_weights(x.shape[-2], size[0], align, x) @ x @ _resize_weights(x.shape[-1], size[1], align, x).t()


def _over_mask(channels: int, mask_size: Sequence[int]) -> nn.Sequential:
    """1x1 conv-BN-ReLU then a 1x1 conv (no bias) to the ``M_h M_w`` mask channels."""
    return nn.Sequential(conv_module(channels, channels), nn.Conv2d(channels, mask_size[0] * mask_size[1], 1, bias=False))


class PointwiseSpatialAttention(nn.Module):
    """``x: B x C_in x H x W -> B x C_in x H x W`` (mmseg PSAHead up to its bottleneck).

    Per branch (``collect``; ``distribute``; both for ``bi-direction``): ``r = reduce(x)`` (1x1 conv-BN-ReLU, C_in ->
    ``channels``), resized by ``shrink_factor`` (``ceil(h / s)`` with align_corners when both sides are indivisible,
    ``floor(h / s)`` without otherwise); mask ``m = attention(r)`` (``M_h M_w`` channels, ``mask_size``) laid out
    by :func:`psa_mask` (or, ``compact``, read as the ``hw x hw`` map itself), softmax over source positions
    (``psa_softmax``); ``y_p = sum_q a[q, p] r_q / normalization_factor``. The branches are concatenated, ``proj``
    (1x1 conv-BN-ReLU with padding 1, as mmseg's) maps them to C_in and they are resized back to ``H x W`` (with
    ``align_corners`` when ``shrink_factor`` is 1, mmseg's model setting). ``compact`` transposes the map of
    ``collect`` alone, or of ``distribute`` in ``bi-direction``, as mmseg does.
    """

    def __init__(self, in_channels: int, channels: int, mask_size: Sequence[int] = (97, 97),
                 psa_type: str = "bi-direction", compact: bool = False, shrink_factor: int = 2,
                 normalization_factor: float = 1.0, psa_softmax: bool = True, align_corners: bool = False):
        super().__init__()
        if psa_type not in PSA_TYPES:
            raise ValueError(f"PSA psa_type must be one of {PSA_TYPES}, got {psa_type!r}")
        self.mask_size, self.psa_type, self.compact = tuple(int(s) for s in mask_size), psa_type, compact
        self.shrink_factor, self.psa_softmax, self.align_corners = int(shrink_factor), psa_softmax, align_corners
        self.normalization_factor = normalization_factor or self.mask_size[0] * self.mask_size[1]
        self.reduce = conv_module(in_channels, channels)
        self.attention = _over_mask(channels, self.mask_size)
        if psa_type == "bi-direction":
            self.reduce_p = conv_module(in_channels, channels)
            self.attention_p = _over_mask(channels, self.mask_size)
        self.proj = conv_module(channels * (2 if psa_type == "bi-direction" else 1), in_channels, padding=1)

    def _shrunk(self, h, w, exportable: bool):
        """The shrunk size and its align_corners: ``ceil`` and True when neither side divides, else ``floor`` and
        False (as tensors when ``exportable``, so that an exported graph keeps the choice)."""
        s = self.shrink_factor
        if not exportable:
            return ((h - 1) // s + 1, (w - 1) // s + 1, True) if h % s and w % s else (h // s, w // s, False)
        h, w = torch.as_tensor(h), torch.as_tensor(w)
        odd = ((h % s) != 0) & ((w % s) != 0)
        return h // s + odd.long(), w // s + odd.long(), odd

    def maps(self, x: Tensor) -> tuple[list[Tensor], list[Tensor], bool]:
        """The reduced (shrunk) features ``B x C x h x w`` and attention ``B x hw x h x w`` (source q x target p,
        softmaxed over q) of each branch, and the align_corners of the resizes."""
        exportable = recording()
        h, w = x.shape[-2:]
        align, branches = self.align_corners, []
        modes = ["collect", "distribute"] if self.psa_type == "bi-direction" else [self.psa_type]
        for mode, reduce, attention in zip(modes, [self.reduce, getattr(self, "reduce_p", None)],
                                           [self.attention, getattr(self, "attention_p", None)]):
            r = reduce(x)
            if self.shrink_factor != 1:
                h, w, align = self._shrunk(*x.shape[-2:], exportable)
                r = _resize(r, (h, w), align, exportable)
            m = attention(r)
            if not self.compact:
                m = psa_mask(m, self.mask_size, mode)
            elif mode == ("collect" if len(modes) == 1 else "distribute"):  # compact: the raw map, transposed as mmseg
                m = m.reshape(-1, h * w, h * w).transpose(1, 2).reshape(-1, h * w, h, w)
            branches.append((r, m.softmax(1) if self.psa_softmax else m))
        return [r for r, _ in branches], [m for _, m in branches], align

    def forward(self, x: Tensor) -> Tensor:
        feats, attn, align = self.maps(x)
        out = torch.cat([torch.bmm(r.flatten(2), a.flatten(2)).view_as(r) / self.normalization_factor
                         for r, a in zip(feats, attn)], 1)
        out = _resize(self.proj(out), x.shape[-2:], align, recording())
        return out.contiguous(memory_format=memory_format_of(x))


