"""Albumentations pipelines of the papers (mmseg-style), built from plain YAML kwargs.

Both pipelines are called as ``t(image=uint8 HxWx3 RGB, mask=uint8 HxW)`` and return
``{"image": float32 tensor 3xhxw, "mask": uint8 tensor hxw, ...}``. Masks are only ever resized
nearest-neighbour, cropped, flipped and padded with 255; photometric ops touch the image only.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from albumentations.pytorch import ToTensorV2  # noqa: E402

from segattn.constants import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD  # noqa: E402, F401  (means re-exported)
from segattn.data.flip_pairs import swap_table
from segattn.data.mmseg_augment import MmsegAugment  # noqa: E402


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, (int, float)) else (int(size[0]), int(size[1]))


class PairedHorizontalFlip(A.HorizontalFlip):
    """Horizontal flip that also swaps the mask's left/right classes (``flip_pairs``, e.g. LIP's arms)."""

    def __init__(self, flip_pairs: Sequence[Sequence[int]], p: float = 0.5):
        super().__init__(p=p)
        self.table = swap_table(flip_pairs)

    def apply_to_mask(self, mask: np.ndarray, *args: Any, **params: Any) -> np.ndarray:
        return self.table[super().apply_to_mask(mask, *args, **params)]


class RandomScaleCrop(A.DualTransform):
    """Random rescale by s ~ U(scale_range) followed by a random crop of at most ``height`` x
    ``width`` of the rescaled image, computed as one affine warp that samples only the crop's
    pixels (the result of mmseg's Resize(ratio_range) + RandomCrop, at a fraction of the cost).

    The crop is re-drawn (up to ``max_tries`` times, as mmseg) while one class covers at least
    ``cat_max_ratio`` of its labelled pixels; ``cat_max_ratio >= 1`` disables the check.
    Image bilinear, mask nearest. Output: at most height x width (pad afterwards).
    """

    def __init__(self, height: int, width: int, scale_range: Sequence[float] = (1.0, 1.0),
                 cat_max_ratio: float = 1.0, max_tries: int = 10, p: float = 1.0):
        super().__init__(p=p)
        self.height, self.width = height, width
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.cat_max_ratio, self.max_tries = cat_max_ratio, max_tries

    def _draw(self, shape: tuple[int, int], scale: float) -> dict[str, Any]:
        """A random crop of the rescaled image: affine map source -> crop, crop size, source window."""
        sh, sw = max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))
        ch, cw = min(self.height, sh), min(self.width, sw)
        y0, x0 = self.py_random.randint(0, sh - ch), self.py_random.randint(0, sw - cw)
        fy, fx = sh / shape[0], sw / shape[1]
        # pixel centres as in cv2.resize: src = (dst + offset + 0.5) / f - 0.5
        matrix = np.array([[fx, 0, 0.5 * fx - 0.5 - x0], [0, fy, 0.5 * fy - 0.5 - y0]], np.float64)
        x1, y1 = min(shape[1], round((x0 + cw) / fx)), min(shape[0], round((y0 + ch) / fy))
        window = (int(x0 / fx), int(y0 / fy), x1, y1)
        return {"matrix": matrix, "size": (cw, ch), "window": window}

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        shape = params["shape"][:2]
        scale = self.py_random.uniform(*self.scale_range)
        crop = self._draw(shape, scale)
        mask = data.get("mask")
        if mask is not None and self.cat_max_ratio < 1.0:
            for _ in range(self.max_tries):
                x0, y0, x1, y1 = crop["window"]
                counts = cv2.calcHist([mask[y0:y1, x0:x1]], [0], None, [256], [0, 256]).ravel()[:IGNORE_INDEX]
                if np.count_nonzero(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                    break
                crop = self._draw(shape, scale)
        return crop

    @staticmethod
    def _apply(array: np.ndarray, matrix: np.ndarray, size: tuple[int, int], window, flags: int) -> np.ndarray:
        x0, y0, x1, y1 = window
        if matrix[0, 0] == matrix[1, 1] == 1.0:  # no rescale: a plain crop
            return np.ascontiguousarray(array[y0:y1, x0:x1])
        return cv2.warpAffine(array, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)

    def apply(self, img: np.ndarray, matrix=None, size=None, window=None, **params: Any) -> np.ndarray:
        return self._apply(img, matrix, size, window, cv2.INTER_LINEAR)

    def apply_to_mask(self, mask: np.ndarray, matrix=None, size=None, window=None, **params: Any) -> np.ndarray:
        return self._apply(mask, matrix, size, window, cv2.INTER_NEAREST)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width", "scale_range", "cat_max_ratio", "max_tries")


def photometric_distortion(
    brightness_delta: int = 32, contrast_range: Sequence[float] = (0.5, 1.5),
    saturation_range: Sequence[float] = (0.5, 1.5), hue_delta: int = 18,
) -> A.Compose:
    """Brightness (+-delta), contrast, saturation and hue (+-delta in OpenCV's 0-180 hue units), each with
    probability 0.5, in this order, with albumentations' saturation (a blend with grey) and hue: near mmseg's
    PhotoMetricDistortion, not equal to it (the mmseg recipes use :mod:`segattn.data.mmseg_augment`). Image only."""
    return A.Compose([
        A.RandomBrightnessContrast(brightness_limit=brightness_delta / 255, contrast_limit=0, p=0.5),
        A.RandomBrightnessContrast(
            brightness_limit=0, contrast_limit=(contrast_range[0] - 1, contrast_range[1] - 1), p=0.5
        ),
        A.ColorJitter(brightness=(1, 1), contrast=(1, 1), saturation=tuple(saturation_range), hue=0, p=0.5),
        A.ColorJitter(brightness=(1, 1), contrast=(1, 1), saturation=(1, 1), hue=hue_delta / 180, p=0.5),
    ])


def build_train_transform(
    crop_size: int | Sequence[int],
    scale_range: Sequence[float] = (0.5, 2.0),
    cat_max_ratio: float = 0.75,
    flip_prob: float = 0.5,
    photometric: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    resize_scale: Optional[Sequence[int]] = None,
    flip_pairs: Sequence[Sequence[int]] = (),
) -> A.Compose:
    """Random rescale by a factor in ``scale_range`` -> random crop ``crop_size`` (h, w) with the
    cat_max_ratio re-draw -> hflip -> photometric distortion -> normalise -> pad to ``crop_size``
    (0 in the normalised image, 255 in the mask) -> tensors. Output: image 3xHcxWc, mask HcxWc.

    ``resize_scale`` (w, h), the mmseg recipes': mmseg's own transforms, draw for draw
    (:class:`~segattn.data.mmseg_augment.MmsegAugment`: resize to ``resize_scale`` x ratio keeping the aspect
    ratio, then crop); None: :class:`RandomScaleCrop` (the factor relative to the image, as the official CCNet).
    """
    crop_h, crop_w = _pair(crop_size)
    if resize_scale is not None:
        steps: list[A.BasicTransform] = [MmsegAugment(resize_scale, (crop_h, crop_w), scale_range, cat_max_ratio,
                                                      flip_prob, photometric, flip_pairs)]
    else:
        steps = [RandomScaleCrop(crop_h, crop_w, scale_range, cat_max_ratio)]
        if flip_prob > 0:  # with ``flip_pairs`` (the dataset's FLIP_PAIRS) a flip also swaps those classes
            steps.append(PairedHorizontalFlip(flip_pairs, p=flip_prob) if flip_pairs else A.HorizontalFlip(p=flip_prob))
        if photometric:
            steps.append(photometric_distortion())
    steps += [
        A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0),
        A.PadIfNeeded(
            min_height=crop_h, min_width=crop_w, position="top_left",
            border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX,
        ),
        ToTensorV2(),
    ]
    return A.Compose(steps, seed=torch.initial_seed() % 2**32)


class ValTransform:
    """Normalise (optionally after resizing the image to a short side of ``resize_short``);
    the mask (optional: images alone for prediction) stays at the original size so metrics compare at the
    label's resolution.
    Returns image 3xhxw, mask HxW and, with ``resize_short``, ``orig_size`` = long tensor (H, W):
    upsample the logits to it (the mask's size) before scoring. ``resize_scale=[long, short]`` instead
    is mmseg's keep-ratio ``Resize(scale)``: factor ``min(long / max(H, W), short / min(H, W))``, size
    ``int(side * factor + 0.5)`` (``[2049, 1025]``: 1024x2048 Cityscapes -> 1025x2049).
    """

    def __init__(self, resize_short: Optional[int] = None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 resize_scale: Optional[Sequence[int]] = None):
        self.resize_short = resize_short
        self.resize_scale = tuple(resize_scale) if resize_scale else None
        self.image_ops = A.Compose([A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0), ToTensorV2()])

    def __call__(self, image: np.ndarray, mask: Optional[np.ndarray] = None) -> dict[str, torch.Tensor]:
        out = {} if mask is None else {"mask": torch.from_numpy(np.ascontiguousarray(mask))}
        h, w = image.shape[:2]
        if self.resize_scale:
            out["orig_size"] = torch.tensor([h, w], dtype=torch.long)
            factor = min(max(self.resize_scale) / max(h, w), min(self.resize_scale) / min(h, w))
            size = (int(w * factor + 0.5), int(h * factor + 0.5))
            if size != (w, h):
                image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        elif self.resize_short:
            out["orig_size"] = torch.tensor([h, w], dtype=torch.long)
            if min(h, w) != self.resize_short:
                scale = self.resize_short / min(h, w)
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        out["image"] = self.image_ops(image=image)["image"]
        return out

    def __repr__(self) -> str:
        return f"ValTransform(resize_short={self.resize_short}, resize_scale={self.resize_scale})"


def build_val_transform(
    resize_short: Optional[int] = None, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
    resize_scale: Optional[Sequence[int]] = None,
) -> ValTransform:
    """Val/test pipeline: full resolution (Cityscapes), short side ``resize_short`` (ADE20K: 512) or mmseg's
    keep-ratio ``resize_scale`` (the 769x769 Cityscapes recipes: [2049, 1025])."""
    return ValTransform(resize_short, mean, std, resize_scale)
