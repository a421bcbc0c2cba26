"""Disentangled non-local block (Yin et al., "Disentangled Non-Local Neural Networks", ECCV 2020), as
mmsegmentation's ``DisentangledNonLocal2d`` (the block of its DNLHead).

A :class:`NonLocal2d` (same ``g`` / ``theta`` / ``phi`` / ``conv_out`` parameters) whose pairwise term
is whitened (keys and queries minus their means over positions) and sharpened by ``temperature``, plus
a unary term: ``conv_mask`` (1x1, C -> 1) gives one softmax map over positions, which pools ``g``.
"""
from __future__ import annotations

from torch import Tensor, nn

from segattn.models.attention.non_local import NonLocal2d
from segattn.models.attention.projection import position_softmax

DNL_MODES = ("embedded_gaussian", "dot_product")


class DisentangledNonLocal2d(NonLocal2d):
    """``z_i = x_i + BN(W_z (y_i + u))``:

    pairwise ``y_i = sum_j softmax_j((theta_i - mu_q) . (phi_j - mu_k) * s / temperature) g_j`` with
    ``mu_q``, ``mu_k`` the means of ``theta`` and ``phi`` over positions and ``s = 1/sqrt(inter)`` when
    ``use_scale`` (``dot_product``: the whitened dot products over N, no temperature); unary
    ``u = sum_j softmax_j(w_m . x_j + b_m) g_j``, one vector per image added at every position (as
    mmseg 1.x; mmseg 0.x passed each term through ``W_z`` and its BN on its own).

    Shapes: ``x: B x C x H x W -> B x C x H x W``; ``theta``, ``phi``, ``g``: ``B x HW x inter`` with
    ``inter = C // reduction``; the pairwise map is ``B x HW x HW``, the unary map ``B x HW``.
    ``use_sdpa`` as :class:`NonLocal2d`. The output BN starts at zero, so a fresh block is the identity.
    """

    def __init__(self, in_channels: int, reduction: int = 2, mode: str = "embedded_gaussian",
                 use_scale: bool = True, temperature: float = 0.05, use_sdpa: bool = True):
        if mode not in DNL_MODES:
            raise ValueError(f"DisentangledNonLocal2d mode must be one of {DNL_MODES}, got {mode!r}")
        if not temperature > 0:
            raise ValueError(f"DisentangledNonLocal2d temperature must be > 0, got {temperature}")
        super().__init__(in_channels, reduction=reduction, mode=mode, use_scale=use_scale, use_sdpa=use_sdpa)
        self.temperature = temperature
        if mode == "embedded_gaussian":
            self.scale = self.scale / temperature
        self.conv_mask = nn.Conv2d(in_channels, 1, 1)

    def unary_attention(self, x: Tensor) -> Tensor:
        """``B x HW`` unary weights (softmax over positions)."""
        return position_softmax(self.conv_mask, x)

    def forward(self, x: Tensor, return_attention: bool = False):
        """``x -> out`` [and the ``B x HW x HW`` whitened pairwise map when ``return_attention``]."""
        b, _, h, w = x.shape
        q, k, v = self._embeddings(x)
        q, k = q - q.mean(1, keepdim=True), k - k.mean(1, keepdim=True)  # whitening
        y, weights = self._aggregate(q, k, v, fused=self.use_sdpa and not return_attention)  # B x HW x inter
        unary = self.unary_attention(x).to(v.dtype).unsqueeze(1).bmm(v)  # B x 1 x inter
        out = x + self.conv_out((y + unary).transpose(1, 2).reshape(b, -1, h, w))
        return (out, weights) if return_attention else out
