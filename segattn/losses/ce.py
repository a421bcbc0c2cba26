"""Pixel-wise cross-entropy (ignore index 255)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.constants import IGNORE_INDEX


class CrossEntropy(nn.Module):
    """Pixel-wise cross-entropy; ``logits B x K x H x W``, ``target B x H x W`` (255 ignored).

    The mean over the labelled pixels; a batch without any labelled pixel gives 0 and zero gradients
    (PyTorch's mean reduction divides by zero there and returns NaN).
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        total = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="sum")
        return total / (target != self.ignore_index).sum().clamp(min=1)
