"""Non-local block (Wang et al., "Non-local Neural Networks", CVPR 2018), 2-D version.

Follows the paper and mmcv's ``NonLocal2d`` (the block mmsegmentation's NLHead uses): the same four
pairwise functions, ``1/sqrt(d)`` scaling of the embedded Gaussian, max-pool sub-sampling placed after
the ``phi``/``g`` convs, N-normalisation by the number of key positions, 0.01-std init of the
embeddings and a zero-initialised output BN.

Parameter names: ``g``, ``theta``, ``phi`` are plain 1x1 ``Conv2d`` (``nn.Identity`` for ``theta``/``phi``
in ``gaussian`` mode, which has no embedding); ``conv_out`` is ``Sequential(conv=Conv2d, bn=BatchNorm2d)``,
so its keys are ``conv_out.conv.weight`` and ``conv_out.bn.*`` as in mmcv's ConvModule (mmcv's
``g.conv.*``/``theta.conv.*``/``phi.conv.*`` map to ``g.*``/``theta.*``/``phi.*``); ``concatenation``
adds ``concat_project`` (1x1 conv, 2*inter -> 1, no bias).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.attention.blockwise import attend
from segattn.models.attention.projection import project_tokens

MODES = ("gaussian", "embedded_gaussian", "dot_product", "concatenation")


class NonLocal2d(nn.Module):
    """``z_i = x_i + BN(W_z y_i)``, ``y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j)``.

    Pairwise functions ``f`` and normalisers ``C`` by ``mode``:
    ``gaussian`` ``exp(x_i . x_j)`` / sum over j (softmax of raw features),
    ``embedded_gaussian`` ``exp(theta_i . phi_j [/ sqrt(inter)])`` / sum over j (the scale when ``use_scale``),
    ``dot_product`` ``theta_i . phi_j`` / N, ``concatenation`` ``ReLU(w^T [theta_i; phi_j])`` / N,
    with N the number of key positions (HW, or about HW/4 with ``sub_sample``, which max-pools the
    key side ``phi`` (raw ``x`` in gaussian mode) and ``g`` by 2).

    Shapes: ``x: B x C x H x W -> B x C x H x W``; ``theta``: ``B x HW x inter``, ``phi``, ``g``:
    ``B x N x inter`` with ``inter = C // reduction``; the pairwise map is ``B x HW x N``.
    The output BN's weight and bias start at zero, so a fresh block is the identity.

    ``use_sdpa=True`` takes each mode's path that never stores the ``HW x N`` map where one exists:
    ``scaled_dot_product_attention`` for the two softmax modes (its fused kernels keep softmax
    statistics in fp32; on CPU they need equal query/value widths, so ``gaussian``, whose query is C
    wide and value inter wide, takes ``blockwise_attention`` there) and the reassociated product
    ``theta (phi^T g) / N`` for ``dot_product``; ``concatenation`` has no such path. ``use_sdpa=False``
    forms the map explicitly (energies and softmax of the two softmax modes in fp32 under autocast); both paths compute the same values.
    """

    def __init__(
        self,
        in_channels: int,
        reduction: int = 2,
        mode: str = "embedded_gaussian",
        sub_sample: bool = False,
        use_scale: bool = True,
        use_sdpa: bool = True,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"NonLocal2d mode must be one of {MODES}, got {mode!r}")
        if not 1 <= reduction <= in_channels:
            raise ValueError(f"NonLocal2d reduction must be in [1, in_channels={in_channels}], got {reduction}")
        inter = in_channels // reduction
        self.mode, self.use_sdpa = mode, use_sdpa
        self.scale = inter**-0.5 if (mode == "embedded_gaussian" and use_scale) else 1.0
        self.g = nn.Conv2d(in_channels, inter, 1)
        if mode == "gaussian":
            self.theta, self.phi = nn.Identity(), nn.Identity()
        else:
            self.theta = nn.Conv2d(in_channels, inter, 1)
            self.phi = nn.Conv2d(in_channels, inter, 1)
        if mode == "concatenation":
            self.concat_project = nn.Conv2d(2 * inter, 1, 1, bias=False)
        self.pool = nn.MaxPool2d(2) if sub_sample else nn.Identity()
        self.conv_out = nn.Sequential(
            OrderedDict(conv=nn.Conv2d(inter, in_channels, 1, bias=False), bn=nn.BatchNorm2d(in_channels))
        )
        for conv in (self.g, self.theta, self.phi):
            if isinstance(conv, nn.Conv2d):
                nn.init.normal_(conv.weight, std=0.01)
                nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.conv_out.bn.weight)
        nn.init.zeros_(self.conv_out.bn.bias)

    def forward(self, x: Tensor, return_attention: bool = False):
        """``x -> out`` [and the ``B x HW x N`` pairwise map, formed explicitly, when ``return_attention``]."""
        b, _, h, w = x.shape
        q, k, v = self._embeddings(x)
        q, k = q.to(v.dtype), k.to(v.dtype)  # gaussian mode under autocast: raw x may be fp32
        y, weights = self._aggregate(q, k, v, fused=self.use_sdpa and not return_attention)  # B x HW x inter
        out = x + self.conv_out(y.transpose(1, 2).reshape(b, -1, h, w))
        return (out, weights) if return_attention else out

    def _embeddings(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``theta: B x HW x d``, ``phi: B x N x d``, ``g: B x N x inter``; views of one projection except in gaussian mode."""
        h, w = x.shape[-2:]
        if self.mode == "gaussian":  # no embedding: the raw features are query and key
            return (_tokens(x), _tokens(self.pool(x)), _tokens(self.pool(self.g(x))))
        inter = self.g.out_channels
        q, kv = project_tokens(x, (self.theta, self.phi, self.g)).split([inter, 2 * inter], -1)
        if isinstance(self.pool, nn.MaxPool2d):  # pool phi and g as one channels-last map B x 2inter x H x W
            kv = _tokens(self.pool(kv.unflatten(1, (h, w)).permute(0, 3, 1, 2)))
        k, v = kv.split(inter, -1)
        return q, k, v

    def _aggregate(self, q: Tensor, k: Tensor, v: Tensor, fused: bool) -> tuple[Tensor, Optional[Tensor]]:
        """``y`` and the ``B x HW x N`` map (None from a ``fused`` path, which never forms it)."""
        n = k.shape[1]
        if self.mode in ("gaussian", "embedded_gaussian"):
            if fused:
                return attend(q, k, v, self.scale), None
            with torch.autocast(q.device.type, enabled=False):  # energies and softmax in >= fp32
                exact = torch.promote_types(q.dtype, torch.float32)
                weights = (torch.bmm(q.to(exact), k.to(exact).transpose(1, 2)) * self.scale).softmax(-1)
        elif self.mode == "dot_product":
            if fused:
                return torch.bmm(q, torch.bmm(k.transpose(1, 2), v)) / n, None
            weights = torch.bmm(q, k.transpose(1, 2)) / n
        else:  # concatenation: w^T [theta_i; phi_j] = w_theta . theta_i + w_phi . phi_j
            w_theta, w_phi = self.concat_project.weight.flatten().chunk(2)
            weights = F.relu((q @ w_theta).unsqueeze(2) + (k @ w_phi).unsqueeze(1)) / n
        return torch.bmm(weights.to(v.dtype), v), weights


def _tokens(t: Tensor) -> Tensor:
    """``B x C x H x W -> B x HW x C`` with unit channel stride, as fused attention kernels want
    (a view of a channels-last ``t``, a copy of a contiguous one)."""
    return t.flatten(2).transpose(1, 2).contiguous()
