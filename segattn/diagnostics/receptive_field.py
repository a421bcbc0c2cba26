"""Empirical receptive field: how strongly each input pixel moves the output at chosen points.

``|d out_u / d x|`` is the gradient of the sum of the K logits at pixel ``u`` with respect to the
input image, in absolute value and summed over the colour channels (eval mode, float32). A local
head's gradient is exactly zero beyond its receptive field; an attention head's is not.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor, nn


def input_gradients(model: nn.Module, image: Tensor, points: Sequence[tuple[int, int]]) -> np.ndarray:
    """``P x H x W`` gradients ``|d sum_k logits_k(u) / d image|`` for each ``u = (y, x)`` of ``points``
    (pixels of the ``3 x H x W`` ``image``; the logits are resized to the image as the model does)."""
    was_training = model.training
    model.eval()
    maps = []
    try:
        for y, x in points:
            inp = image[None].detach().float().clone().requires_grad_(True)
            logits = model(inp)
            logits[0, :, y, x].sum().backward()
            maps.append(inp.grad[0].abs().sum(0).cpu().numpy())
    finally:
        model.train(was_training)
    return np.stack(maps)


def reach_curve(gradient: np.ndarray, point: tuple[int, int], distances: np.ndarray) -> np.ndarray:
    """Share of the gradient's total mass farther than each of ``distances`` (pixels) from ``point``:
    1 at distance 0 (if the point itself is not all of it), 0 beyond the receptive field."""
    h, w = gradient.shape
    yy, xx = np.mgrid[0:h, 0:w]
    radius = np.hypot(yy - point[0], xx - point[1]).ravel()
    mass = gradient.ravel().astype(np.float64)
    total = mass.sum()
    if not np.isfinite(total) or total <= 0:
        return np.zeros(len(distances))
    order = np.argsort(radius)
    beyond = total - np.cumsum(mass[order])  # mass strictly beyond radius[order[i]]
    index = np.searchsorted(radius[order], distances, side="right") - 1
    return np.where(index >= 0, beyond[np.clip(index, 0, None)], total) / total
