"""OHEM cross-entropy, as CCNet trained (ignore index 255), with optional class weights."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segattn.constants import IGNORE_INDEX
from segattn.losses.ce import pixel_weights
from segattn.losses.weights import ClassWeight, average_pixel_loss, check_average, check_class_count, load_class_weight


class OhemCrossEntropy(nn.Module):
    """Online hard example mining cross-entropy, as CCNet trained.

    Keeps the pixels whose predicted probability of the true class is below ``thresh``, but at least
    the ``min_kept`` hardest valid pixels (the threshold rises to the ``min_kept``-th smallest
    probability); the loss is ``sum w[y] * CE`` over the kept pixels divided as ``average`` says
    (:mod:`segattn.losses.weights`; the official code with class weights divides by the kept pixels'
    weights: ``average=weighted``). The selection does not depend on the weights.
    """

    def __init__(self, thresh: float = 0.7, min_kept: int = 100000, ignore_index: int = IGNORE_INDEX,
                 class_weight: ClassWeight = None, average: str = "non_ignore"):
        super().__init__()
        self.thresh, self.min_kept, self.ignore_index = thresh, min_kept, ignore_index
        self.average = check_average(average)
        self.register_buffer("class_weight", load_class_weight(class_weight), persistent=False)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        check_class_count(self.class_weight, logits.shape[1])
        pixel_loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none").flatten()
        valid = target.flatten() != self.ignore_index
        with torch.no_grad():
            prob = torch.exp(-pixel_loss.detach().float())[valid]
            if self.min_kept >= prob.numel():  # too few valid pixels: keep them all, as the official code
                threshold = 1.0
            elif self.min_kept > 0:
                threshold = max(self.thresh, prob.kthvalue(self.min_kept).values.item())
            else:
                threshold = self.thresh
            keep = torch.zeros_like(valid)
            keep[valid] = prob <= threshold
        return average_pixel_loss(pixel_loss, pixel_weights(self.class_weight, target, valid), keep, self.average)
