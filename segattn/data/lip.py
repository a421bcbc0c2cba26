"""LIP (Look Into Person) human parsing as downloaded: 20 classes, 0 = background is a class, left/right pairs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from segattn.constants import IGNORE_INDEX
from segattn.data.base import SegDataset, make_lut
from segattn.data.lists import listed_pairs, read_names

CLASSES = (
    "Background", "Hat", "Hair", "Glove", "Sunglasses", "UpperClothes", "Dress", "Coat", "Socks", "Pants",
    "Jumpsuits", "Scarf", "Skirt", "Face", "Left-arm", "Right-arm", "Left-leg", "Right-leg", "Left-shoe", "Right-shoe",
)
PALETTE = (  # mmseg's LIPDataset colours
    (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0), (0, 0, 85), (0, 119, 221),
    (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0), (0, 0, 255), (51, 170, 221), (0, 255, 255),
    (85, 255, 170), (170, 255, 85), (255, 255, 0), (255, 170, 0),
)
FLIP_PAIRS = ((14, 15), (16, 17), (18, 19))  # left/right arm, leg, shoe
ZIP_FOLDERS = ("TrainVal_images", "TrainVal_parsing_annotations")  # the two zips' top folders


class LIPDataset(SegDataset):
    """``<split>_images/<id>.jpg`` with ``<split>_segmentations/<id>.png`` for the ids of ``<split>_id.txt``
    (split ``train`` or ``val``), each found in ``root`` or in the zips' ``TrainVal_images/`` /
    ``TrainVal_parsing_annotations/`` under it. Label k is class k (0 = background), 255 ignored; a horizontal
    flip swaps the classes of :data:`FLIP_PAIRS`.
    """

    CLASSES = CLASSES
    PALETTE = PALETTE
    FLIP_PAIRS = FLIP_PAIRS

    def __init__(self, root: str | Path, split: str = "train", transform: Optional[Callable] = None):
        self.lut = make_lut({k: k for k in range(len(CLASSES))})
        self.valid_values = frozenset(range(len(CLASSES))) | {IGNORE_INDEX}
        super().__init__(root, split, transform)

    def locate(self, name: str) -> Path:
        """``root/<name>`` or ``root/<zip folder>/<name>``, whichever exists (the first when none does)."""
        candidates = [self.root / name] + [self.root / z / name for z in ZIP_FOLDERS]
        return next((c for c in candidates if c.exists()), candidates[0])

    def image_dir(self) -> Path:
        return self.locate(f"{self.split}_images")

    def expected_layout(self) -> str:
        return (
            f"  {self.root}/   (each item here or in TrainVal_images/ / TrainVal_parsing_annotations/)\n"
            f"    {self.split}_images/<id>.jpg\n"
            f"    {self.split}_segmentations/<id>.png   (0 = background, 1..19 = classes)\n"
            f"    {self.split}_id.txt"
        )

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        ann_dir = self.locate(f"{self.split}_segmentations")
        self.require_dirs(self.image_dir(), ann_dir)
        list_file = self.locate(f"{self.split}_id.txt")
        return listed_pairs(read_names(list_file), self.image_dir(), ".jpg", ann_dir, ".png", list_file)
