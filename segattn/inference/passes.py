"""Test-time passes: whole image or sliding window, multi-scale and horizontal flip (evaluate, predict, benchmarks)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _starts(length: int, crop: int, stride: int) -> list[int]:
    """Window starts along one axis; the last window ends at the border."""
    if length <= crop:
        return [0]
    count = -(-(length - crop) // stride) + 1
    return [min(i * stride, length - crop) for i in range(count)]


def crop_windows(
    height: int, width: int, crop_size: Sequence[int], stride: Sequence[int]
) -> list[tuple[int, int, int, int]]:
    """Overlapping windows ``(y1, y2, x1, x2)`` covering a ``height x width`` image.

    Windows are ``crop_size`` large (clipped to the image when it is smaller) and start every
    ``stride`` pixels; the last row and column of windows are shifted to end at the border.
    """
    (ch, cw), (sh, sw) = crop_size, stride
    if min(ch, cw, sh, sw) <= 0:
        raise ValueError(f"crop_size and stride must be positive, got crop_size={crop_size}, stride={stride}")
    return [
        (y, min(y + ch, height), x, min(x + cw, width))
        for y in _starts(height, ch, sh)
        for x in _starts(width, cw, sw)
    ]


def _run(model: nn.Module, x: Tensor, num_classes: int) -> Tensor:
    logits = model(x)
    if logits.shape[1] != num_classes:
        raise ValueError(f"model predicts {logits.shape[1]} classes, the dataset has {num_classes}")
    return logits


def slide_logits(
    model: nn.Module, image: Tensor, crop_size: Sequence[int], stride: Sequence[int], num_classes: int
) -> Tensor:
    """Sliding-window logits Bx3xHxW -> BxKxHxW.

    The image is zero-padded at the bottom/right up to ``crop_size`` when smaller; the logits of
    overlapping windows are summed and divided by the count of windows covering each pixel.
    """
    b, _, h, w = image.shape
    ch, cw = crop_size
    padded = F.pad(image, (0, max(cw - w, 0), 0, max(ch - h, 0)))
    ph, pw = padded.shape[-2:]
    total = image.new_zeros((b, num_classes, ph, pw))
    count = image.new_zeros((1, 1, ph, pw))
    for y1, y2, x1, x2 in crop_windows(ph, pw, crop_size, stride):
        total[:, :, y1:y2, x1:x2] += _run(model, padded[:, :, y1:y2, x1:x2], num_classes)
        count[:, :, y1:y2, x1:x2] += 1
    return (total / count)[:, :, :h, :w]


@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    image: Tensor,
    mode: str = "whole",
    crop_size: Sequence[int] | None = None,
    stride: Sequence[int] | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    *,
    num_classes: int,
    out_size: Sequence[int] | None = None,
    align_corners: bool | None = None,
    flip_pairs: Sequence[Sequence[int]] = (),
) -> Tensor:
    """Class probabilities Bx3xHxW -> BxKx(out_size or HxW), averaged over scales and flips.

    For each scale s the image is resized to (round(s*H), round(s*W)) and predicted whole or with a
    sliding window; the logits are resized to ``out_size`` (as training's validation does), turned
    into probabilities (softmax) and averaged over passes (as mmseg's aug_test); with ``flip`` the
    horizontally flipped image is predicted too and its logits flipped back, with the channels of each
    ``flip_pairs`` class pair swapped (the dataset's FLIP_PAIRS: LIP's left/right limbs).
    ``model(x)`` returns BxKxhxw logits at its input size and must be in eval mode. Logits are
    resized with ``align_corners`` (default: the model's ``align_corners`` attribute, else False).
    """
    if mode not in ("whole", "slide"):
        raise ValueError(f"eval mode must be 'whole' or 'slide', got {mode!r}")
    if mode == "slide" and (crop_size is None or stride is None):
        raise ValueError("slide mode needs crop_size and stride, e.g. crop_size=[769,769] stride=[513,513]")
    if align_corners is None:
        align_corners = bool(getattr(model, "align_corners", False))
    h, w = image.shape[-2:]
    out_size = tuple(out_size) if out_size is not None else (h, w)
    probs = image.new_zeros((image.shape[0], num_classes, *out_size))
    flips = (False, True) if flip else (False,)
    swapped = list(range(num_classes))
    for a, b in flip_pairs:
        swapped[a], swapped[b] = b, a
    for scale in scales:
        size = (round(h * scale), round(w * scale))
        scaled = image if size == (h, w) else F.interpolate(image, size=size, mode="bilinear", align_corners=False)
        for flipped in flips:
            x = scaled.flip(-1) if flipped else scaled
            if mode == "whole":
                logits = _run(model, x, num_classes)
            else:
                logits = slide_logits(model, x, crop_size, stride, num_classes)
            logits = (logits.flip(-1)[:, swapped] if flipped else logits).float()  # resized and averaged in fp32 under autocast
            if logits.shape[-2:] != out_size:
                logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=align_corners)
            probs += logits.softmax(dim=1)
    return probs / (len(scales) * len(flips))
