"""``predict``: one image -> ``H x W`` class ids (and probabilities) with the evaluation's passes."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from segattn.inference.images import to_input
from segattn.inference.passes import predict_probabilities


@torch.no_grad()
def predict(model: nn.Module, image, mode: str = "whole", crop_size: Optional[Sequence[int]] = None,
            stride: Optional[Sequence[int]] = None, scales: Sequence[float] = (1.0,), flip: bool = False,
            return_probabilities: bool = False, device=None):
    """``image`` (uint8 RGB array, PIL image, path, or float tensor in [0, 1]) -> ``H x W`` long class ids
    [and ``K x H x W`` probabilities], at the image's size. ``model`` must be in eval mode; the passes are
    :func:`segattn.inference.passes.predict_probabilities` (``evaluate.py``'s)."""
    if model.training:
        raise ValueError("predict: the model is in training mode; call model.eval() first (load_model does)")
    if device is None:
        device = next(iter(model.parameters()), torch.zeros(())).device
    x = to_input(image).to(device)
    probs = predict_probabilities(model, x, mode, crop_size, stride, tuple(scales), flip,
                                  num_classes=model.num_classes)[0]
    ids = probs.argmax(0)
    return (ids, probs) if return_probabilities else ids

