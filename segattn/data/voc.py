"""PASCAL VOC 2012 as downloaded (palette PNGs, index = class, 255 = boundary) and VOC-aug (SBD labels)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from segattn.constants import IGNORE_INDEX
from segattn.data.base import SegDataset, make_lut
from segattn.data.errors import DatasetError
from segattn.data.files import read_bytes
from segattn.data.lists import listed_pairs, read_names
from segattn.data.mat import read_mat_label

CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def voc_colormap(n: int = 256) -> tuple[tuple[int, int, int], ...]:
    """The devkit's colour map (VOClabelcolormap.m): bits 0/1/2 of the index fill r/g/b from the top bit down."""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for bit in range(7, -1, -1):
            r |= (c & 1) << bit
            g |= ((c >> 1) & 1) << bit
            b |= ((c >> 2) & 1) << bit
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


COLORMAP = voc_colormap()
PALETTE = COLORMAP[: len(CLASSES)]


def voc_folder(root: str | Path, year: str) -> Path:
    """``VOCdevkit/VOC<year>`` given it, ``VOCdevkit`` or the folder holding ``VOCdevkit``."""
    root = Path(root).expanduser()
    for candidate in (root / "VOCdevkit" / f"VOC{year}", root / f"VOC{year}"):
        if candidate.is_dir():
            return candidate
    return root


def read_palette_label(path: Path, gray_ok: bool = False) -> np.ndarray:
    """Indices of a VOC palette PNG (uint8 HxW); refuses another mode (``L`` too unless ``gray_ok``) or palette."""
    with Image.open(io.BytesIO(read_bytes(path).tobytes())) as pil:
        mode, label = pil.mode, np.asarray(pil)
        palette = pil.getpalette() if mode == "P" else None
    if mode == "L" and gray_ok:
        return label
    if mode != "P":
        raise DatasetError(f"label {path} has mode {mode!r}: VOC labels are palette ('P') PNGs whose index is the class")
    colours = np.asarray(palette, np.int64).reshape(-1, 3)
    bad = [int(v) for v in np.unique(label)
           if v >= len(colours) or tuple(int(x) for x in colours[v]) != COLORMAP[v]]
    if bad:
        found = [tuple(int(x) for x in colours[v]) if v < len(colours) else None for v in bad]
        raise DatasetError(f"label {path} has a palette that is not VOC's: values {bad} have colours {found}, "
                           f"VOC's are {[COLORMAP[v] for v in bad]}")
    return label


def read_sbd_mat(path: Path) -> np.ndarray:
    """SBD ``cls/*.mat`` class map (``GTcls.Segmentation``, uint8 HxW); needs scipy (``pip install segattn[sbd]``)."""
    return read_mat_label(path, lambda mat: mat["GTcls"][0]["Segmentation"][0], "GTcls.Segmentation", "sbd")


class VOC12Dataset(SegDataset):
    """``VOCdevkit/VOC2012/JPEGImages/<name>.jpg`` with ``SegmentationClass/<name>.png`` for the names in
    ``ImageSets/Segmentation/<split>.txt``; ``root`` is ``VOC2012``, ``VOCdevkit`` or the folder holding it.
    Label k is class k (0 = background), 255 (the object boundary) is ignored.
    """

    CLASSES = CLASSES
    PALETTE = PALETTE
    YEAR = "2012"

    def __init__(self, root: str | Path, split: str = "train", transform: Optional[Callable] = None):
        self.data_root = Path(root).expanduser()
        self.lut = make_lut({k: k for k in range(len(CLASSES))})
        self.valid_values = frozenset(range(len(CLASSES))) | {IGNORE_INDEX}
        super().__init__(voc_folder(root, self.YEAR), split, transform)

    def image_dir(self) -> Path:
        return self.root / "JPEGImages"

    def expected_layout(self) -> str:
        return (
            f"  {self.root}/   (VOCdevkit/VOC{self.YEAR})\n"
            f"    JPEGImages/<name>.jpg\n"
            f"    SegmentationClass/<name>.png   (palette PNG: index = class 0..20, 255 = boundary)\n"
            f"    ImageSets/Segmentation/{self.split}.txt"
        )

    def list_file(self, name: str) -> Path:
        return self.root / "ImageSets" / "Segmentation" / f"{name}.txt"

    def sources(self) -> list[tuple[list[str], Path, str, Path]]:
        """``(names, label folder, label suffix, list file)`` per part of the split."""
        list_file = self.list_file(self.split)
        self.require_dirs(self.image_dir(), self.root / "SegmentationClass", list_file.parent)
        return [(read_names(list_file), self.root / "SegmentationClass", ".png", list_file)]

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        pairs = []
        for names, ann_dir, ann_suffix, list_file in self.sources():
            pairs += listed_pairs(names, self.image_dir(), ".jpg", ann_dir, ann_suffix, list_file)
        return pairs

    def read_raw_label(self, path: Path) -> np.ndarray:
        if path.suffix == ".mat":
            return read_sbd_mat(path)
        return read_palette_label(path, gray_ok=path.parent.name == "SegmentationClassAug")


class VOC12AugDataset(VOC12Dataset):
    """VOC 2012 with the SBD labels, as mmseg's ``voc12aug``: ``train`` is ``train.txt`` (SegmentationClass)
    plus ``aug.txt`` (the 10,582 names; ``SegmentationClassAug/<name>.png``, grey or palette), ``val`` is VOC
    val. Without ``SegmentationClassAug/`` the aug labels are read from SBD's
    ``benchmark_RELEASE/dataset/cls/<name>.mat`` (next to ``VOCdevkit``, or ``VOCdevkit/VOCaug/dataset``) and,
    without ``aug.txt``, the aug list is SBD train + val + VOC train minus VOC val.
    """

    def sbd_folder(self) -> Optional[Path]:
        for folder in (self.data_root / "benchmark_RELEASE" / "dataset", self.root.parent / "VOCaug" / "dataset",
                       self.root.parent.parent / "benchmark_RELEASE" / "dataset"):
            if (folder / "cls").is_dir():
                return folder
        return None

    def expected_layout(self) -> str:
        return super().expected_layout() + (
            "\n    SegmentationClassAug/<name>.png + ImageSets/Segmentation/aug.txt   (train only)\n"
            "  or SBD: benchmark_RELEASE/dataset/{cls/<name>.mat, train.txt, val.txt} next to VOCdevkit"
        )

    def aug_names(self, sbd: Optional[Path]) -> tuple[list[str], Path]:
        aug = self.list_file("aug")
        if aug.is_file() or sbd is None:
            return read_names(aug), aug
        merged = read_names(sbd / "train.txt") + read_names(sbd / "val.txt") + read_names(self.list_file("train"))
        excluded = set(read_names(self.list_file("val")))
        return sorted(set(merged) - excluded), sbd / "train.txt"

    def sources(self) -> list[tuple[list[str], Path, str, Path]]:
        voc = super().sources()
        if self.split != "train":
            return voc
        aug_dir, sbd = self.root / "SegmentationClassAug", self.sbd_folder()
        if aug_dir.is_dir():
            names, list_file = self.aug_names(None)
            return voc + [(names, aug_dir, ".png", list_file)]
        if sbd is None:
            self.require_dirs(aug_dir)
        names, list_file = self.aug_names(sbd)
        return voc + [(names, sbd / "cls", ".mat", list_file)]
