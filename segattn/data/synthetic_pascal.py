"""Small deterministic data in the PASCAL layouts (VOC 2012 + SBD aug), for tests and quick checks.

Each image is a background with a few shapes of random classes; a shape's pixels are its class colour plus
noise. Same ``seed`` -> same files.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segattn.data.synthetic import _draw
from segattn.data.voc import COLORMAP

BOUNDARY = 255


def shapes_layout(rng: np.random.Generator, h: int, w: int, classes: np.ndarray, background: int) -> np.ndarray:
    """Class map HxW (uint8): ``background`` with 2-5 shapes whose classes are drawn from ``classes``."""
    layout = np.full((h, w), background, np.uint8)
    for _ in range(int(rng.integers(2, 6))):
        size = rng.uniform(0.2, 0.6) * min(h, w)
        _draw(layout, int(rng.choice(classes)), str(rng.choice(["rect", "ellipse", "polygon"])), rng.uniform(0, w),
              rng.uniform(size / 2, h), size * rng.uniform(0.6, 1.6), size, rng)
    return layout


def render(layout: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 image: the colour-map colour of each value plus Gaussian noise."""
    colours = np.asarray(COLORMAP, np.float32)[layout]
    return np.clip(colours + rng.normal(0, 12, colours.shape), 0, 255).astype(np.uint8)


def with_boundary(layout: np.ndarray, width: int = 2) -> np.ndarray:
    """``layout`` with ``BOUNDARY`` on a band of ``width`` px along every edge between two classes (as VOC)."""
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    edge = cv2.dilate(layout, kernel) != cv2.erode(layout, kernel)
    return np.where(edge, np.uint8(BOUNDARY), layout)


def write_palette_png(path: Path, label: np.ndarray, colormap=COLORMAP) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(label, mode="P")
    pil.putpalette([v for c in colormap for v in c])
    pil.save(path)


def write_jpg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise OSError(f"could not write {path}")


def write_list(path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{n}\n" for n in names))


def generate_voc(root: str | Path, num_train: int = 4, num_val: int = 2, num_aug: int = 0, sbd: bool = False,
                 height: int = 48, width: int = 64, seed: int = 0) -> Path:
    """Write ``root/VOCdevkit/VOC2012`` (JPEGImages, palette SegmentationClass with a 255 boundary band,
    ImageSets/Segmentation/{train,val}.txt) and ``num_aug`` extra SBD images: as ``SegmentationClassAug`` grey
    PNGs + ``aug.txt`` (the aug list: extra + train names), or with ``sbd`` as ``root/benchmark_RELEASE/dataset/
    cls/*.mat`` + SBD's train.txt / val.txt (needs scipy). Returns ``root``."""
    root = Path(root)
    voc = root / "VOCdevkit" / "VOC2012"
    classes = np.arange(1, 21)
    names = {"train": [f"2008_{i:06d}" for i in range(num_train)], "val": [f"2009_{i:06d}" for i in range(num_val)],
             "aug": [f"2010_{i:06d}" for i in range(num_aug)]}
    for split_no, split in enumerate(("train", "val", "aug")):
        for i, name in enumerate(names[split]):
            rng = np.random.default_rng([seed, split_no, i])
            layout = shapes_layout(rng, height, width, classes, 0)
            write_jpg(voc / "JPEGImages" / f"{name}.jpg", render(layout, rng))
            if split != "aug":
                write_palette_png(voc / "SegmentationClass" / f"{name}.png", with_boundary(layout))
            if split == "aug" or (split == "train" and num_aug):  # SBD labels: no boundary band
                if sbd:
                    from scipy.io import savemat

                    (root / "benchmark_RELEASE/dataset/cls").mkdir(parents=True, exist_ok=True)
                    savemat(root / f"benchmark_RELEASE/dataset/cls/{name}.mat", {"GTcls": {"Segmentation": layout}})
                else:
                    (voc / "SegmentationClassAug").mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(voc / "SegmentationClassAug" / f"{name}.png"), layout)
        if split != "aug":
            write_list(voc / "ImageSets/Segmentation" / f"{split}.txt", names[split])
    if num_aug and sbd:
        half = num_aug // 2
        write_list(root / "benchmark_RELEASE/dataset/train.txt", names["aug"][:half] + names["train"])
        write_list(root / "benchmark_RELEASE/dataset/val.txt", names["aug"][half:] + names["val"][:1])
    elif num_aug:
        write_list(voc / "ImageSets/Segmentation/aug.txt", names["aug"] + names["train"])
    return root


def generate_pascal_context(root: str | Path, num_train: int = 4, num_val: int = 2, height: int = 48,
                            width: int = 64, seed: int = 0) -> Path:
    """Write ``root/VOCdevkit/VOC2010`` with JPEGImages, grey ``SegmentationClassContext`` PNGs (0 = background,
    1..59) and ``ImageSets/SegmentationContext/{train,val}.txt``. Returns ``root``."""
    root = Path(root)
    voc = root / "VOCdevkit" / "VOC2010"
    for split_no, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        names = [f"20{8 + split_no:02d}_{i:06d}" for i in range(count)]
        for i, name in enumerate(names):
            rng = np.random.default_rng([seed, 20 + split_no, i])
            layout = shapes_layout(rng, height, width, np.arange(1, 60), 0)
            write_jpg(voc / "JPEGImages" / f"{name}.jpg", render(layout, rng))
            (voc / "SegmentationClassContext").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(voc / "SegmentationClassContext" / f"{name}.png"), layout)
        write_list(voc / "ImageSets/SegmentationContext" / f"{split}.txt", names)
    return root


def generate_lip(root: str | Path, num_train: int = 4, num_val: int = 2, height: int = 48, width: int = 32,
                 seed: int = 0) -> Path:
    """Write LIP's layout as its zips unpack: ``root/TrainVal_images/{train,val}_images/*.jpg`` + ``{train,val}_id.txt``
    and ``root/TrainVal_parsing_annotations/{train,val}_segmentations/*.png`` (0 = background, 1..19; every
    image has a left arm (14) in its left half and a right arm (15) in its right half). Returns ``root``."""
    root = Path(root)
    images, labels = root / "TrainVal_images", root / "TrainVal_parsing_annotations"
    for split_no, (split, count) in enumerate((("train", num_train), ("val", num_val))):
        names = [f"{100000 + i}_{split_no}" for i in range(count)]
        for i, name in enumerate(names):
            rng = np.random.default_rng([seed, 30 + split_no, i])
            layout = shapes_layout(rng, height, width, np.arange(1, 14), 0)
            layout[height // 4: height // 2, : width // 4] = 14
            layout[height // 4: height // 2, width - width // 4:] = 15
            write_jpg(images / f"{split}_images" / f"{name}.jpg", render(layout, rng))
            (labels / f"{split}_segmentations").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(labels / f"{split}_segmentations" / f"{name}.png"), layout)
        write_list(images / f"{split}_id.txt", names)
    return root
