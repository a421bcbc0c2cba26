"""``predict``: one image -> ``H x W`` class ids (and probabilities) with the model's test pipeline."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from segattn.inference.images import read_rgb
from segattn.inference.passes import predict_probabilities
from segattn.inference.pipeline import fill_passes, input_transform


@torch.no_grad()
def predict(model: nn.Module, image, mode: Optional[str] = None, crop_size: Optional[Sequence[int]] = None,
            stride: Optional[Sequence[int]] = None, scales: Sequence[float] = (1.0,), flip: bool = False,
            return_probabilities: bool = False, device=None, channel_order: str = "rgb"):
    """``image`` (uint8 array, PIL image, path, or float tensor in [0, 1]; arrays and tensors in
    ``channel_order``) -> ``H x W`` long class ids [and ``K x H x W`` probabilities] at the image's size.

    The model's ``test_pipeline`` (set by :func:`segattn.load_model`: its checkpoint's resize and
    whole / slide settings) applies to every argument left None; without one: whole image, no resize.
    ``model`` must be in eval mode; the passes are :func:`segattn.inference.passes.predict_probabilities`.
    """
    if model.training:
        raise ValueError("predict: the model is in training mode; call model.eval() first (load_model does)")
    if device is None:
        device = next(iter(model.parameters()), torch.zeros(())).device
    pipeline = getattr(model, "test_pipeline", None) or {}
    passes = fill_passes({"mode": mode, "crop_size": crop_size, "stride": stride}, pipeline.get("eval"))
    rgb = read_rgb(image, channel_order)
    x = input_transform(pipeline.get("val_transform"))(rgb).to(device)
    probs = predict_probabilities(model, x, passes["mode"], passes["crop_size"], passes["stride"], tuple(scales),
                                  flip, num_classes=model.num_classes, out_size=rgb.shape[:2],
                                  flip_pairs=pipeline.get("flip_pairs") or ())[0]
    ids = probs.argmax(0)
    return (ids, probs) if return_probabilities else ids
