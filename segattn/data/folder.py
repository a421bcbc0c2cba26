"""Any dataset laid out as ``root/<img_dir>/<split>/...`` + ``root/<ann_dir>/<split>/...`` with a class list."""
from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Callable, Optional, Sequence

from segattn.constants import IGNORE_INDEX
from segattn.data.base import SegDataset, make_lut, pair_files
from segattn.data.errors import DatasetError


def default_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """``n`` distinct colours spread around the hue circle (deterministic)."""
    colours = []
    for i in range(n):
        r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.65 + 0.35 * (i % 2), 0.95 - 0.3 * (i % 3) / 2)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return tuple(colours)


def _check_classes(classes: Sequence[str], palette: Optional[Sequence[Sequence[int]]], reduce_zero_label: bool):
    if not classes:
        raise DatasetError("FolderDataset needs `classes`: the list of class names (label k = classes[k])")
    if len(classes) > IGNORE_INDEX - int(reduce_zero_label):
        raise DatasetError(f"FolderDataset supports at most {IGNORE_INDEX} classes, got {len(classes)}")
    if palette is not None and (len(palette) != len(classes) or any(len(c) != 3 for c in palette)):
        raise DatasetError(
            f"FolderDataset `palette` must hold one [r, g, b] per class: {len(classes)} classes, "
            f"{len(palette)} colours given"
        )


class FolderDataset(SegDataset):
    """``root/<img_dir>/<split>/**/<stem><img_suffix>`` paired with
    ``root/<ann_dir>/<split>/**/<stem><ann_suffix>``; label value k is class ``classes[k]``
    (with ``reduce_zero_label``: 0 -> 255 and k -> k - 1, as ADE20K), 255 is ignored.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        transform: Optional[Callable] = None,
        img_dir: str = "images",
        ann_dir: str = "annotations",
        img_suffix: str = ".jpg",
        ann_suffix: str = ".png",
        classes: Sequence[str] = (),
        palette: Optional[Sequence[Sequence[int]]] = None,
        reduce_zero_label: bool = False,
    ):
        self.CLASSES, self.PALETTE = self.class_info(classes=classes, palette=palette,
                                                     reduce_zero_label=reduce_zero_label)
        self.img_dir, self.ann_dir = img_dir, ann_dir
        self.img_suffix, self.ann_suffix = img_suffix, ann_suffix
        self.reduce_zero_label = reduce_zero_label
        n, shift = len(self.CLASSES), int(reduce_zero_label)
        self.lut = make_lut({k + shift: k for k in range(n)})
        self.valid_values = frozenset(range(n + shift)) | {IGNORE_INDEX}
        super().__init__(root, split, transform)

    @classmethod
    def class_info(cls, classes: Sequence[str] = (), palette=None, reduce_zero_label: bool = False, **_):
        _check_classes(classes, palette, reduce_zero_label)
        colours = default_palette(len(classes)) if palette is None else palette
        return tuple(str(c) for c in classes), tuple(tuple(int(v) for v in c) for c in colours)

    def image_dir(self) -> Path:
        return self.root / self.img_dir / self.split

    def expected_layout(self) -> str:
        n = len(self.CLASSES)
        values = f"1..{n} = classes, 0 = ignore" if self.reduce_zero_label else f"0..{n - 1} = classes"
        return (
            f"  {self.root}/\n"
            f"    {self.img_dir}/{self.split}/**/<name>{self.img_suffix}\n"
            f"    {self.ann_dir}/{self.split}/**/<name>{self.ann_suffix}   ({values}, 255 = ignore)"
        )

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        img_dir, ann_dir = self.image_dir(), self.root / self.ann_dir / self.split
        self.require_dirs(img_dir, ann_dir)
        return pair_files(img_dir, ann_dir, self.img_suffix, self.ann_suffix, recursive=True)
