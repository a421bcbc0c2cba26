"""mmsegmentation 1.x's training augmentation, draw for draw: RandomResize (to a recipe scale x ratio, keeping
the aspect ratio), RandomCrop (``cat_max_ratio``, 10 tries), RandomFlip, PhotoMetricDistortion.

Each function takes a ``numpy.random.RandomState`` and makes the calls mmseg / mmcv make on numpy's global
one, in their order, so the same seed gives the same draws and the same output (tests/fixtures/mmseg-augment/
holds mmseg's own outputs). Images are uint8 ``H x W x 3`` RGB (mmseg's are BGR: the HSV steps convert from
the matching order, which gives the same pixels), masks uint8 ``H x W``.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # as segattn.data.transforms: no version check online

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from segattn.constants import IGNORE_INDEX  # noqa: E402
from segattn.data.flip_pairs import swap_table  # noqa: E402

CAT_MAX_TRIES = 10  # mmseg's RandomCrop re-draws a crop at most 10 times


def random_resize(image: np.ndarray, mask: np.ndarray, scale: Sequence[int], ratio_range: Sequence[float],
                  rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """mmcv RandomResize(scale=(w, h), ratio_range, keep_ratio=True): the target ``int(scale * r)`` with
    ``r ~ U(ratio_range)``, the image scaled by ``min(long / max(H, W), short / min(H, W))`` of the target
    (bilinear; the mask nearest) to ``int(W * f + 0.5) x int(H * f + 0.5)``."""
    low, high = ratio_range
    ratio = rng.random_sample() * (high - low) + low
    target = int(scale[0] * ratio), int(scale[1] * ratio)
    h, w = image.shape[:2]
    factor = min(max(target) / max(h, w), min(target) / min(h, w))
    size = int(w * factor + 0.5), int(h * factor + 0.5)
    return (cv2.resize(image, size, interpolation=cv2.INTER_LINEAR),
            cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST))


def random_crop(image: np.ndarray, mask: np.ndarray, crop_size: Sequence[int], cat_max_ratio: float,
                rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """mmseg RandomCrop(crop_size=(h, w), cat_max_ratio): a window at a uniform offset, re-drawn (up to 10
    times) while one class holds ``cat_max_ratio`` or more of its labelled pixels (``>= 1``: no check)."""
    def window() -> tuple[int, int, int, int]:
        y = rng.randint(0, max(image.shape[0] - crop_size[0], 0) + 1)
        x = rng.randint(0, max(image.shape[1] - crop_size[1], 0) + 1)
        return y, y + crop_size[0], x, x + crop_size[1]

    y1, y2, x1, x2 = window()
    if cat_max_ratio < 1.0:
        for _ in range(CAT_MAX_TRIES):
            labels, counts = np.unique(mask[y1:y2, x1:x2], return_counts=True)
            counts = counts[labels != IGNORE_INDEX]
            if len(counts) > 1 and counts.max() / counts.sum() < cat_max_ratio:
                break
            y1, y2, x1, x2 = window()
    return image[y1:y2, x1:x2], mask[y1:y2, x1:x2]


def random_flip(image: np.ndarray, mask: np.ndarray, prob: float, rng: np.random.RandomState,
                flip_table: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """mmcv RandomFlip(prob, direction='horizontal'): one ``choice`` between flipping and not; a flipped mask
    goes through ``flip_table`` (:func:`segattn.data.flip_pairs.swap_table`) where the dataset has left/right classes."""
    if rng.choice(2, p=[prob, 1.0 - prob]) == 0:
        mask = mask[:, ::-1]
        return image[:, ::-1], (flip_table[mask] if flip_table is not None else mask)
    return image, mask


def _scaled(values: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:
    return np.clip(values.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


def photometric_distortion(image: np.ndarray, rng: np.random.RandomState, brightness_delta: int = 32,
                           contrast_range: Sequence[float] = (0.5, 1.5),
                           saturation_range: Sequence[float] = (0.5, 1.5), hue_delta: int = 18) -> np.ndarray:
    """mmseg PhotoMetricDistortion: brightness (+- delta), then contrast either now or last (one draw), saturation
    (HSV S scaled) and hue (HSV H shifted, modulo 180), each with probability 1/2."""
    def brightness(img):
        return _scaled(img, beta=rng.uniform(-brightness_delta, brightness_delta)) if rng.randint(2) else img

    def contrast(img):
        return _scaled(img, alpha=rng.uniform(*contrast_range)) if rng.randint(2) else img

    def saturation(img):
        if rng.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            hsv[:, :, 1] = _scaled(hsv[:, :, 1], alpha=rng.uniform(*saturation_range))
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return img

    def hue(img):
        if rng.randint(2):
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
            hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + rng.randint(-hue_delta, hue_delta)) % 180
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return img

    image = brightness(image)
    contrast_first = rng.randint(2) == 1
    if contrast_first:
        image = contrast(image)
    image = hue(saturation(image))
    return image if contrast_first else contrast(image)


class MmsegAugment(A.DualTransform):
    """mmseg's train pipeline up to normalisation: :func:`random_resize` -> :func:`random_crop` ->
    :func:`random_flip` -> :func:`photometric_distortion` (if ``photometric``), on one RandomState seeded by
    ``set_random_seed`` (the data loader reseeds it per sample). Output: at most ``crop_size`` (pad afterwards).
    """

    def __init__(self, scale: Sequence[int], crop_size: Sequence[int], ratio_range: Sequence[float] = (0.5, 2.0),
                 cat_max_ratio: float = 0.75, flip_prob: float = 0.5, photometric: bool = True,
                 flip_pairs: Sequence[Sequence[int]] = ()):
        super().__init__(p=1.0)
        self.flip_pairs = [list(pair) for pair in flip_pairs]
        self.flip_table = swap_table(flip_pairs) if flip_pairs else None
        self.scale, self.crop_size = (int(scale[0]), int(scale[1])), (int(crop_size[0]), int(crop_size[1]))
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))
        self.cat_max_ratio, self.flip_prob, self.photometric = cat_max_ratio, flip_prob, photometric
        self.rng = np.random.RandomState(0)

    def set_random_seed(self, seed: int | None) -> None:
        super().set_random_seed(seed)
        self.rng = np.random.RandomState(None if seed is None else seed % 2**32)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        image, mask = data["image"], data.get("mask")
        if mask is None:
            mask = np.full(image.shape[:2], IGNORE_INDEX, np.uint8)
        image, mask = random_resize(image, mask, self.scale, self.ratio_range, self.rng)
        image, mask = random_crop(image, mask, self.crop_size, self.cat_max_ratio, self.rng)
        if self.flip_prob > 0:
            image, mask = random_flip(image, mask, self.flip_prob, self.rng, self.flip_table)
        if self.photometric:
            image = photometric_distortion(image, self.rng)
        return {"augmented": (np.ascontiguousarray(image), np.ascontiguousarray(mask))}

    def apply(self, img: np.ndarray, augmented=None, **params: Any) -> np.ndarray:
        return augmented[0]

    def apply_to_mask(self, mask: np.ndarray, augmented=None, **params: Any) -> np.ndarray:
        return augmented[1]

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale", "crop_size", "ratio_range", "cat_max_ratio", "flip_prob", "photometric", "flip_pairs")
