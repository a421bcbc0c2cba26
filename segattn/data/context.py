"""A synthetic task that only long-range context solves: a region's class is the colour of a far marker.

Every image is a wide strip with a coloured marker band along its left or right border (full
height, so it lies in the same row as every pixel). The *far zone*, the columns at least
``min_distance`` pixels from the marker, is covered by one checkerboard texture (with a few flat
background holes) whose class is the marker's colour, so its local appearance is the same for
every class; the columns between marker and far zone are flat background. A dilated ResNet-18
with an FCN head cannot see further than 288 pixels at output stride 16 and 268 at 8 (measured
over all column phases: the gradient of an output pixel is exactly zero for inputs further away;
``tests/test_context.py`` checks it on the default geometry), so with the default
``min_distance`` no prediction in the far zone depends on the marker: a local head can only guess.

Written as ``root/images/<split>/ctx_<i>.png`` and ``root/annotations/<split>/ctx_<i>.png``
(values ``0..len(CLASSES)-1``), the layout ``FolderDataset`` reads (``conf/data/context.yaml``).
Marker pixels carry their class too (that part is local); background is class 0.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CLASSES = ("background", "red", "green", "blue", "yellow")
PALETTE = ((128, 128, 128), (220, 40, 40), (40, 170, 40), (40, 70, 220), (220, 200, 30))
BACKGROUND_GREY = 120
TEXTURE_PERIOD = 8  # checkerboard of the regions, the same for every class
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def far_zone(width: int, marker_width: int, min_distance: int, marker_left: bool) -> slice:
    """Columns at least ``min_distance`` pixels from every marker column."""
    if marker_left:
        return slice(marker_width - 1 + min_distance, width)
    return slice(0, width - marker_width + 1 - min_distance)


def render(rng: np.random.Generator, height: int, width: int, marker_width: int,
           min_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """One sample: RGB uint8 ``H x W x 3`` and labels uint8 ``H x W``."""
    cls = int(rng.integers(1, len(CLASSES)))
    marker_left = bool(rng.random() < 0.5)
    zone = far_zone(width, marker_width, min_distance, marker_left)
    regions = np.zeros((height, width), np.uint8)
    regions[:, zone] = 1
    for _ in range(int(rng.integers(0, 3))):  # background holes keep texture, not position, the evidence
        w, h = int(rng.integers(12, 49)), int(rng.integers(height // 2, height + 1))
        x0, y0 = int(rng.integers(zone.start, zone.stop - w)), int(rng.integers(0, height - h + 1))
        if rng.random() < 0.5:
            cv2.rectangle(regions, (x0, y0), (x0 + w - 1, y0 + h - 1), 0, -1)
        else:
            cv2.ellipse(regions, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), 0, 0, 360, 0, -1)

    yy, xx = np.mgrid[0:height, 0:width]
    phase = rng.integers(0, TEXTURE_PERIOD, 2)
    checker = (((yy + phase[0]) // (TEXTURE_PERIOD // 2) + (xx + phase[1]) // (TEXTURE_PERIOD // 2)) % 2) * 2 - 1
    grey = BACKGROUND_GREY + 40.0 * checker * regions
    image = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    labels = (regions * cls).astype(np.uint8)
    band = slice(0, marker_width) if marker_left else slice(width - marker_width, width)
    image[:, band] = PALETTE[cls]
    labels[:, band] = cls
    image *= rng.uniform(0.85, 1.15)
    image += rng.normal(0.0, 12.0, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def generate_context(
    root: str | Path, num_train: int = 400, num_val: int = 48, height: int = 16, width: int = 464,
    marker_width: int = 32, min_distance: int = 304, seed: int = 0,
) -> Path:
    """Write the train and val splits under ``root`` (deterministic in ``seed``); returns ``root``."""
    if width < marker_width + min_distance + 64:
        raise ValueError(
            f"context images need width >= marker_width + min_distance + 64 = {marker_width + min_distance + 64} "
            f"(room for regions in the far zone), got width={width}"
        )
    root = Path(root)
    for split_no, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        for dirname in ("images", "annotations"):
            (root / dirname / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, labels = render(np.random.default_rng([seed, split_no, i]), height, width, marker_width, min_distance)
            name = f"ctx_{i:05d}.png"
            if not (cv2.imwrite(str(root / "images" / split / name), image[:, :, ::-1], _PNG)
                    and cv2.imwrite(str(root / "annotations" / split / name), labels, _PNG)):
                raise OSError(f"could not write {name} under {root}")
    return root
