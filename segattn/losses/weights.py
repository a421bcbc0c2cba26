"""Class weights and how a pixel-wise loss is averaged.

``class_weight`` of a loss is None, one number per class, or the path of a JSON file holding
``{"class_weight": [...]}`` (``scripts/dataset_stats.py`` writes median-frequency weights there).
``average`` says what the sum of ``w[y] * loss`` over the counted pixels is divided by:

- ``non_ignore``: the number of counted pixels (mmseg ``avg_non_ignore=True``; without weights,
  PyTorch's mean over the labelled pixels);
- ``weighted``: the sum of their weights ``w[y]`` (PyTorch ``cross_entropy(weight=...)``, and the
  official CCNet's OHEM);
- ``all``: every pixel of the batch, ignored ones included (mmseg ``avg_non_ignore=False``).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

AVERAGES = ("non_ignore", "weighted", "all")
ClassWeight = Union[None, str, os.PathLike, Sequence[float]]


def load_class_weight(class_weight: ClassWeight) -> Optional[Tensor]:
    """``class_weight`` as a float32 tensor of K values (None stays None). Raises ValueError naming what
    was found when the values are not finite and >= 0, or the file has no ``class_weight`` list."""
    if class_weight is None:
        return None
    if isinstance(class_weight, (str, os.PathLike)):
        path = Path(class_weight).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"loss.class_weight={class_weight!r}: expected a list of numbers or a JSON file "
                                    f"holding {{\"class_weight\": [...]}} (scripts/dataset_stats.py writes one); no file there")
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("class_weight"), list):
            raise ValueError(f"{path}: expected a JSON object with a 'class_weight' list, found {type(data).__name__} "
                             f"with keys {sorted(data) if isinstance(data, dict) else []}")
        class_weight = data["class_weight"]
    values = [float(v) for v in class_weight]
    if not values or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"loss.class_weight: expected finite weights >= 0, one per class, found {values}")
    return torch.tensor(values, dtype=torch.float32)


def check_average(average: str) -> str:
    """``average`` if it is one of :data:`AVERAGES`, else ValueError naming them."""
    if average not in AVERAGES:
        raise ValueError(f"loss average={average!r}: expected one of {list(AVERAGES)}")
    return average


def check_class_count(weight: Optional[Tensor], num_classes: int) -> None:
    """ValueError when ``weight`` does not hold one value per class of the logits."""
    if weight is not None and weight.numel() != num_classes:
        raise ValueError(f"loss.class_weight has {weight.numel()} values, expected one per class ({num_classes})")


def average_pixel_loss(pixel_loss: Tensor, pixel_weight: Tensor, counted: Tensor, average: str) -> Tensor:
    """Sum of ``pixel_weight * pixel_loss`` over ``counted`` pixels divided as ``average`` says (flat
    tensors of N pixels). No counted pixel (or zero weight) gives 0 with zero gradients, never NaN."""
    total = (pixel_loss * pixel_weight)[counted].sum()
    if average == "non_ignore":
        denominator = counted.sum().to(total.dtype)
    elif average == "weighted":
        denominator = pixel_weight[counted].sum().to(total.dtype)
    else:
        denominator = torch.tensor(float(pixel_loss.numel()), dtype=total.dtype, device=total.device)
    return total / torch.where(denominator > 0, denominator, torch.ones_like(denominator))


def median_frequency_weights(pixels: Sequence[int]) -> np.ndarray:
    """Median-frequency balancing from per-class pixel counts: ``median(share) / share[c]`` with
    ``share`` the class's share of the labelled pixels and the median over the classes present;
    0 for a class with no pixel."""
    pixels = np.asarray(pixels, dtype=np.float64)
    share = pixels / max(pixels.sum(), 1.0)
    present = share > 0
    median = np.median(share[present]) if present.any() else 0.0
    return np.where(present, median / np.maximum(share, 1e-12), 0.0)
