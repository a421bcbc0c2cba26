"""PASCAL Context (VOC 2010 images, mmseg's SegmentationClassContext labels): 60 classes with background, or 59."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from segattn.constants import IGNORE_INDEX
from segattn.data.ade20k import PALETTE as ADE_PALETTE
from segattn.data.base import SegDataset, make_lut
from segattn.data.lists import listed_pairs, read_names
from segattn.data.voc import voc_folder

# Label k of SegmentationClassContext/*.png is CLASSES[k] (mmseg's converter: the 59 classes of the Detail API
# in alphabetical order after 0 = background).
CLASSES = (
    "background", "aeroplane", "bag", "bed", "bedclothes", "bench", "bicycle", "bird", "boat", "book", "bottle",
    "building", "bus", "cabinet", "car", "cat", "ceiling", "chair", "cloth", "computer", "cow", "cup", "curtain",
    "dog", "door", "fence", "floor", "flower", "food", "grass", "ground", "horse", "keyboard", "light", "motorbike",
    "mountain", "mouse", "person", "plate", "platform", "pottedplant", "road", "rock", "sheep", "shelves",
    "sidewalk", "sign", "sky", "snow", "sofa", "table", "track", "train", "tree", "truck", "tvmonitor", "wall",
    "water", "window", "wood",
)
PALETTE = ADE_PALETTE[: len(CLASSES)]  # mmseg's Context palette is the first 60 ADE20K colours


class PascalContextDataset(SegDataset):
    """``VOCdevkit/VOC2010/JPEGImages/<name>.jpg`` with ``SegmentationClassContext/<name>.png`` for the names in
    ``ImageSets/SegmentationContext/<split>.txt``; ``root`` is ``VOC2010``, ``VOCdevkit`` or the folder holding
    it. 60 classes: label k is ``CLASSES[k]`` (0 = background is a class), 255 ignored.
    """

    CLASSES = CLASSES
    PALETTE = PALETTE
    SHIFT = 0  # label k -> class k - SHIFT; labels below SHIFT -> 255

    def __init__(self, root: str | Path, split: str = "train", transform: Optional[Callable] = None):
        self.lut = make_lut({k: k - self.SHIFT for k in range(self.SHIFT, len(CLASSES))})
        self.valid_values = frozenset(range(len(CLASSES))) | {IGNORE_INDEX}
        super().__init__(voc_folder(root, "2010"), split, transform)

    def image_dir(self) -> Path:
        return self.root / "JPEGImages"

    def expected_layout(self) -> str:
        return (
            f"  {self.root}/   (VOCdevkit/VOC2010)\n"
            f"    JPEGImages/<name>.jpg\n"
            f"    SegmentationClassContext/<name>.png   (0 = background, 1..59 = classes)\n"
            f"    ImageSets/SegmentationContext/{self.split}.txt"
        )

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        ann_dir, list_file = self.root / "SegmentationClassContext", self.root / "ImageSets/SegmentationContext"
        self.require_dirs(self.image_dir(), ann_dir, list_file)
        list_file = list_file / f"{self.split}.txt"
        return listed_pairs(read_names(list_file), self.image_dir(), ".jpg", ann_dir, ".png", list_file)


class PascalContext59Dataset(PascalContextDataset):
    """PASCAL Context without background (mmseg's PascalContextDataset59): label 0 -> 255, label k -> class k - 1."""

    CLASSES = CLASSES[1:]
    PALETTE = PALETTE[1:]
    SHIFT = 1
