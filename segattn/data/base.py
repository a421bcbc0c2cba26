"""Shared logic of the file-pair datasets: pairing, decoding, label mapping, checks, transform."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segattn.constants import IGNORE_INDEX
from segattn.data.errors import DatasetError, describe_tree, list_unmatched
from segattn.data.files import read_image, read_label
from segattn.data.transforms import build_val_transform


def make_lut(mapping: dict[int, int]) -> np.ndarray:
    """256-entry uint8 table: raw value -> train id (values not in ``mapping`` -> 255)."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for raw, train_id in mapping.items():
        lut[raw] = train_id
    return lut


def pair_files(
    img_dir: Path, ann_dir: Path, img_suffix: str, ann_suffix: str, recursive: bool
) -> list[tuple[Path, Path]]:
    """Match ``<stem><img_suffix>`` under img_dir with ``<stem><ann_suffix>`` under ann_dir (same sub-path)."""
    def stems(folder: Path, suffix: str) -> dict[str, Path]:
        files = (p for p in folder.glob(("**/*" if recursive else "*") + suffix) if p.is_file())
        return {str(p.relative_to(folder))[: len(str(p.relative_to(folder))) - len(suffix)]: p for p in files}

    imgs, anns = stems(img_dir, img_suffix), stems(ann_dir, ann_suffix)
    no_label = sorted(k + img_suffix for k in imgs.keys() - anns.keys())
    no_image = sorted(k + ann_suffix for k in anns.keys() - imgs.keys())
    if no_label or no_image:
        lines = [f"images and labels do not match ({img_dir} vs {ann_dir}):"]
        if no_label:
            lines.append("  " + list_unmatched(f"images without a '*{ann_suffix}' label", no_label))
        if no_image:
            lines.append("  " + list_unmatched(f"labels without a '*{img_suffix}' image", no_image))
        raise DatasetError("\n".join(lines))
    return [(imgs[k], anns[k]) for k in sorted(imgs)]


class SegDataset(Dataset):
    """Base class. Subclasses set ``CLASSES``/``PALETTE``, ``lut`` (raw value -> train id),
    ``valid_values`` (raw values allowed in a label file), optionally ``FLIP_PAIRS`` (read by the train flip and
    the test-time flip), and return ``(image, label)`` path pairs
    from ``find_samples``; ``label`` is None for splits without ground truth.

    An item is ``{"image": float32 3xHxW, "mask": int64 HxW (255 = ignore), "name": str}``, plus
    whatever extra keys the transform returns (e.g. ``orig_size``).
    """

    CLASSES: tuple[str, ...] = ()
    PALETTE: tuple[tuple[int, int, int], ...] = ()
    FLIP_PAIRS: tuple[tuple[int, int], ...] = ()  # classes a horizontal flip swaps (LIP's left/right limbs)
    lut: np.ndarray
    valid_values: frozenset[int]

    def __init__(self, root: str | Path, split: str, transform: Optional[Callable] = None):
        self.root = Path(root).expanduser()
        self.split = split
        self.transform = transform if transform is not None else build_val_transform()
        self.samples = self.find_samples()
        if not self.samples:
            raise DatasetError(
                f"{type(self).__name__} split '{split}' under {self.root} is empty (no images found).\n"
                f"Expected:\n{self.expected_layout()}\nFound:\n{describe_tree(self.root)}"
            )

    @classmethod
    def class_info(cls, **kwargs) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
        """(class names, palette) without scanning the disk; kwargs are the constructor's."""
        return cls.CLASSES, cls.PALETTE

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        raise NotImplementedError

    def expected_layout(self) -> str:
        """The folder tree this dataset expects, for error messages."""
        raise NotImplementedError

    def image_dir(self) -> Path:
        """Folder that ``name`` is relative to."""
        raise NotImplementedError

    def require_dirs(self, *dirs: Path) -> None:
        """Raise one error showing the expected and the found tree if any of ``dirs`` is missing."""
        missing = [d for d in dirs if not d.is_dir()]
        if missing:
            raise DatasetError(
                f"{type(self).__name__}: folder {missing[0]} not found (split '{self.split}').\n"
                f"Expected:\n{self.expected_layout()}\nFound:\n{describe_tree(self.root)}"
            )

    def __len__(self) -> int:
        return len(self.samples)

    def read_raw_label(self, path: Path) -> np.ndarray:
        """The label file's raw values (uint8 HxW), before ``lut``; datasets with special files override it."""
        return read_label(path)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Decoded image (uint8 HxWx3 RGB) and train-id mask (uint8 HxW), before any transform."""
        img_path, ann_path = self.samples[index]
        image = read_image(img_path)
        if ann_path is None:
            return image, np.full(image.shape[:2], IGNORE_INDEX, dtype=np.uint8)
        raw = self.read_raw_label(ann_path)
        if raw.shape != image.shape[:2]:
            raise DatasetError(
                f"image and label sizes differ: {img_path} is {image.shape[0]}x{image.shape[1]}, "
                f"{ann_path} is {raw.shape[0]}x{raw.shape[1]} (HxW)"
            )
        present = np.flatnonzero(cv2.calcHist([raw], [0], None, [256], [0, 256]))
        bad = [int(v) for v in present if v not in self.valid_values]
        if bad:
            raise DatasetError(
                f"label {ann_path} contains values {bad} outside the ids of {type(self).__name__} "
                f"(allowed: {_ranges(self.valid_values)})"
            )
        return image, cv2.LUT(raw, self.lut)

    def __getitem__(self, index: int) -> dict:
        image, mask = self.load(index)
        out = dict(self.transform(image=image, mask=mask))
        out["mask"] = torch.as_tensor(out["mask"]).long()
        out["name"] = str(self.samples[index][0].relative_to(self.image_dir()))
        return out


def _ranges(values: frozenset[int]) -> str:
    """'0-33, 255' style summary of a set of ints."""
    parts, run = [], []
    for v in sorted(values):
        if run and v != run[-1] + 1:
            parts.append(run)
            run = []
        run.append(v)
    parts.append(run)
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in parts if r)
