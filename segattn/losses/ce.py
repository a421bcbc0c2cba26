"""Pixel-wise cross-entropy (ignore index 255), with optional class weights."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.constants import IGNORE_INDEX
from segattn.losses.weights import ClassWeight, average_pixel_loss, check_average, check_class_count, load_class_weight


class CrossEntropy(nn.Module):
    """Pixel-wise cross-entropy; ``logits B x K x H x W``, ``target B x H x W`` (255 ignored).

    ``sum_i w[y_i] * CE_i`` over the labelled pixels, divided as ``average`` says
    (:mod:`segattn.losses.weights`; the default ``non_ignore``, without weights, is the mean over the
    labelled pixels). A batch without any labelled pixel gives 0 and zero gradients (PyTorch's mean
    reduction divides by zero there and returns NaN).
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX, class_weight: ClassWeight = None,
                 average: str = "non_ignore"):
        super().__init__()
        self.ignore_index, self.average = ignore_index, check_average(average)
        self.register_buffer("class_weight", load_class_weight(class_weight), persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_class_count(self.class_weight, logits.shape[1])
        pixel_loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none").flatten()
        labelled = target.flatten() != self.ignore_index
        return average_pixel_loss(pixel_loss, pixel_weights(self.class_weight, target, labelled), labelled, self.average)


def pixel_weights(class_weight: Tensor | None, target: Tensor, labelled: Tensor) -> Tensor:
    """Flat ``w[y]`` per pixel (1 without class weights; ignored pixels get any value: they never count)."""
    if class_weight is None:
        return torch.ones(labelled.shape, dtype=torch.float32, device=target.device)
    return class_weight.to(target.device)[torch.where(labelled, target.flatten(), 0)]
