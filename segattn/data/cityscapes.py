"""Cityscapes (gtFine) exactly as downloaded: official label ids mapped to the 19 train ids on load."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from segattn.constants import IGNORE_INDEX
from segattn.data.base import SegDataset, make_lut, pair_files

CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)
PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
# Official label id of each train id (cityscapesScripts labels.py); ids 0-33 not listed are void.
TRAIN_TO_LABEL_ID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)
NUM_LABEL_IDS = 34  # label ids 0..33 (license plate, id -1, is never written to *_labelIds.png)
LABEL_TO_TRAIN_LUT = make_lut({label_id: t for t, label_id in enumerate(TRAIN_TO_LABEL_ID)})


def label_ids_to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Official label ids (uint8, any shape) -> train ids 0..18, everything else 255."""
    return LABEL_TO_TRAIN_LUT[label_ids]


def train_ids_to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Train ids 0..18 (any int dtype/shape) -> official label ids (uint8); 255 -> 0 ('unlabeled').

    This is the encoding the Cityscapes evaluation server expects for submitted predictions.
    """
    lut = np.zeros(256, dtype=np.uint8)
    lut[: len(TRAIN_TO_LABEL_ID)] = TRAIN_TO_LABEL_ID
    return lut[np.asarray(train_ids).astype(np.int64).clip(0, 255)]


class CityscapesDataset(SegDataset):
    """``root/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with
    ``root/gtFine/<split>/<city>/*_gtFine_labelIds.png`` (or ``*_gtFine_labelTrainIds.png`` when
    ``use_train_ids``). Split ``test`` has no public labels: its masks are all 255 and only
    the images are required.
    """

    CLASSES = CLASSES
    PALETTE = PALETTE
    IMG_SUFFIX = "_leftImg8bit.png"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Optional[Callable] = None,
        use_train_ids: bool = False,
    ):
        self.use_train_ids = use_train_ids
        self.ann_suffix = "_gtFine_labelTrainIds.png" if use_train_ids else "_gtFine_labelIds.png"
        if use_train_ids:
            self.lut = make_lut({t: t for t in range(len(CLASSES))})
            self.valid_values = frozenset(range(len(CLASSES))) | {IGNORE_INDEX}
        else:
            self.lut = LABEL_TO_TRAIN_LUT
            self.valid_values = frozenset(range(NUM_LABEL_IDS)) | {IGNORE_INDEX}
        super().__init__(root, split, transform)

    def image_dir(self) -> Path:
        return self.root / "leftImg8bit" / self.split

    def expected_layout(self) -> str:
        return (
            f"  {self.root}/\n"
            f"    leftImg8bit/{self.split}/<city>/<city>_<seq>_<frame>{self.IMG_SUFFIX}\n"
            f"    gtFine/{self.split}/<city>/<city>_<seq>_<frame>{self.ann_suffix}"
        )

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        img_dir, ann_dir = self.image_dir(), self.root / "gtFine" / self.split
        if self.split == "test":
            self.require_dirs(img_dir)
            return [(p, None) for p in sorted(img_dir.glob("*/*" + self.IMG_SUFFIX))]
        self.require_dirs(img_dir, ann_dir)
        return pair_files(img_dir, ann_dir, self.IMG_SUFFIX, self.ann_suffix, recursive=True)
