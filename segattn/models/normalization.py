"""The input normalisation a model was trained with, applied on top of the data pipeline's ImageNet one."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from segattn.constants import IMAGENET_MEAN, IMAGENET_STD

PIPELINE_MEAN = tuple(255.0 * m for m in IMAGENET_MEAN)  # the data pipeline's RGB mean and std, in pixels
PIPELINE_STD = tuple(255.0 * s for s in IMAGENET_STD)


class InputNormalization(nn.Module):
    """Re-normalise a pipeline image (RGB, ``(pixel - 255 * IMAGENET_MEAN) / (255 * IMAGENET_STD)``).

    To ``(pixel[order] - mean) / std`` with ``mean`` / ``std`` in pixel units (``std=None``: 1) and
    ``channel_order`` ``rgb`` or ``bgr`` (the official CCNet: BGR caffe means, no std). The default
    (ImageNet RGB mean/std) is the identity and costs nothing. ``B x 3 x H x W -> B x 3 x H x W``.
    """

    def __init__(self, mean: Sequence[float] = PIPELINE_MEAN, std: Optional[Sequence[float]] = PIPELINE_STD,
                 channel_order: str = "rgb"):
        super().__init__()
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"model.normalization.channel_order must be rgb or bgr, got {channel_order!r}")
        mean = tuple(float(m) for m in mean)
        std = tuple(float(s) for s in std) if std is not None else (1.0, 1.0, 1.0)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"model.normalization mean and std need 3 values, got {list(mean)} and {list(std)}")
        order = [2, 1, 0] if channel_order == "bgr" else [0, 1, 2]
        p_mean, p_std = torch.tensor(PIPELINE_MEAN, dtype=torch.float64), torch.tensor(PIPELINE_STD, dtype=torch.float64)
        mean_t, std_t = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
        scale = p_std[order] / std_t  # out_c = x[order[c]] * scale_c + shift_c
        shift = (p_mean[order] - mean_t) / std_t
        self.identity = order == [0, 1, 2] and bool(torch.allclose(scale, torch.ones_like(scale)) and torch.allclose(shift, torch.zeros_like(shift)))
        self.order = order
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.identity:
            return x
        if self.order != [0, 1, 2]:
            x = x[:, self.order]
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
