"""COCO-Stuff as downloaded: 164k (stuffthingmaps PNGs, value = COCO id - 1) and 10k (``*.mat``, ``S`` = COCO id).

Both map the 171 COCO ids in use, in order, to classes 0..170, as mmseg's converters do; the 11 ids COCO never
assigned (:data:`UNUSED_IDS`) must not appear in a label.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import numpy as np

from segattn.constants import IGNORE_INDEX
from segattn.data.base import SegDataset, make_lut, pair_files
from segattn.data.errors import DatasetError, list_unmatched
from segattn.data.lists import read_names
from segattn.data.mat import read_mat_label

CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "banner",
    "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood",
    "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house",
    "leaves", "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper",
    "pavement", "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river",
    "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other",
    "stairs", "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)
PALETTE = (  # mmseg's COCOStuffDataset colours
    (0, 192, 64), (0, 192, 64), (0, 64, 96), (128, 192, 192), (0, 64, 64), (0, 192, 224), (0, 192, 192),
    (128, 192, 64), (0, 192, 96), (128, 192, 64), (128, 32, 192), (0, 0, 224), (0, 0, 64), (0, 160, 192),
    (128, 0, 96), (128, 0, 192), (0, 32, 192), (128, 128, 224), (0, 0, 192), (128, 160, 192), (128, 128, 0),
    (128, 0, 32), (128, 32, 0), (128, 0, 128), (64, 128, 32), (0, 160, 0), (0, 0, 0), (192, 128, 160), (0, 32, 0),
    (0, 128, 128), (64, 128, 160), (128, 160, 0), (0, 128, 0), (192, 128, 32), (128, 96, 128), (0, 0, 128),
    (64, 0, 32), (0, 224, 128), (128, 0, 0), (192, 0, 160), (0, 96, 128), (128, 128, 128), (64, 0, 160),
    (128, 224, 128), (128, 128, 64), (192, 0, 32), (128, 96, 0), (128, 0, 192), (0, 128, 32), (64, 224, 0),
    (0, 0, 64), (128, 128, 160), (64, 96, 0), (0, 128, 192), (0, 128, 160), (192, 224, 0), (0, 128, 64),
    (128, 128, 32), (192, 32, 128), (0, 64, 192), (0, 0, 32), (64, 160, 128), (128, 64, 64), (128, 0, 160),
    (64, 32, 128), (128, 192, 192), (0, 0, 160), (192, 160, 128), (128, 192, 0), (128, 0, 96), (192, 32, 0),
    (128, 64, 128), (64, 128, 96), (64, 160, 0), (0, 64, 0), (192, 128, 224), (64, 32, 0), (0, 192, 128),
    (64, 128, 224), (192, 160, 0), (0, 192, 0), (192, 128, 96), (192, 96, 128), (0, 64, 128), (64, 0, 96),
    (64, 224, 128), (128, 64, 0), (192, 0, 224), (64, 96, 128), (128, 192, 128), (64, 0, 224), (192, 224, 128),
    (128, 192, 64), (192, 0, 96), (192, 96, 0), (128, 64, 192), (0, 128, 96), (0, 224, 0), (64, 64, 64),
    (128, 128, 224), (0, 96, 0), (64, 192, 192), (0, 128, 224), (128, 224, 0), (64, 192, 64), (128, 128, 96),
    (128, 32, 128), (64, 0, 192), (0, 64, 96), (0, 160, 128), (192, 0, 64), (128, 64, 224), (0, 32, 128),
    (192, 128, 192), (0, 64, 224), (128, 160, 128), (192, 128, 0), (128, 64, 32), (128, 32, 64), (192, 0, 128),
    (64, 192, 32), (0, 160, 64), (64, 0, 0), (192, 192, 160), (0, 32, 64), (64, 128, 128), (64, 192, 160),
    (128, 160, 64), (64, 128, 0), (192, 192, 32), (128, 96, 192), (64, 0, 128), (64, 64, 32), (0, 224, 192),
    (192, 0, 0), (192, 64, 160), (0, 96, 192), (192, 128, 128), (64, 64, 160), (128, 224, 192), (192, 128, 64),
    (192, 64, 32), (128, 96, 64), (192, 0, 192), (0, 192, 32), (64, 224, 64), (64, 0, 64), (128, 192, 160),
    (64, 96, 64), (64, 128, 192), (0, 192, 160), (192, 224, 64), (64, 128, 64), (128, 192, 32), (192, 32, 192),
    (64, 64, 192), (0, 64, 32), (64, 160, 192), (192, 64, 64), (128, 64, 160), (64, 32, 192), (192, 192, 192),
    (0, 64, 160), (192, 160, 192), (192, 192, 0), (128, 64, 96), (192, 32, 64), (192, 64, 128), (64, 192, 96),
    (64, 160, 64), (64, 64, 0),
)
UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)  # COCO ids 1..182 with no class
USED_IDS = tuple(i for i in range(1, 183) if i not in UNUSED_IDS)  # class k is COCO id USED_IDS[k]


class COCOStuff164kDataset(SegDataset):
    """``root/images/<split>2017/*.jpg`` with ``root/annotations/<split>2017/*.png`` from
    ``stuffthingmaps_trainval2017.zip`` (value = COCO id - 1, 255 unlabeled); split ``train`` or ``val``
    (``train2017`` / ``val2017`` accepted). Value ``USED_IDS[k] - 1`` is class k.
    """

    CLASSES = CLASSES
    PALETTE = PALETTE

    def __init__(self, root: str | Path, split: str = "train", transform: Optional[Callable] = None):
        self.lut = make_lut({coco_id - 1: k for k, coco_id in enumerate(USED_IDS)})
        self.valid_values = frozenset(i - 1 for i in USED_IDS) | {IGNORE_INDEX}
        super().__init__(root, split if split.endswith("2017") else f"{split}2017", transform)

    def image_dir(self) -> Path:
        return self.root / "images" / self.split

    def expected_layout(self) -> str:
        return (
            f"  {self.root}/\n"
            f"    images/{self.split}/<id>.jpg   (COCO 2017 images)\n"
            f"    annotations/{self.split}/<id>.png   (stuffthingmaps: COCO id - 1, 255 = unlabeled)"
        )

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        img_dir, ann_dir = self.image_dir(), self.root / "annotations" / self.split
        self.require_dirs(img_dir, ann_dir)
        return pair_files(img_dir, ann_dir, ".jpg", ".png", recursive=False)


class COCOStuff10kDataset(SegDataset):
    """``cocostuff-10k-v1.1.zip`` as shipped: ``root/imageLists/{train,test}.txt`` naming ``images/<name>.jpg``
    (or ``images/{train2014,test2014}/<name>.jpg``) and ``annotations/<name>.mat`` whose ``S`` holds COCO ids
    (0 = unlabeled -> 255); split ``train`` or ``val`` (= the 1,000 ``test`` images). COCO id ``USED_IDS[k]`` is
    class k. Reading ``.mat`` needs scipy (``pip install 'segattn[sbd]'``).
    """

    CLASSES = CLASSES
    PALETTE = PALETTE
    LISTS = {"train": "train", "val": "test", "test": "test"}

    def __init__(self, root: str | Path, split: str = "train", transform: Optional[Callable] = None):
        self.lut = make_lut({coco_id: k for k, coco_id in enumerate(USED_IDS)})
        self.valid_values = frozenset(USED_IDS) | {0}
        super().__init__(root, split, transform)

    def image_dir(self) -> Path:
        return self.root / "images"

    def expected_layout(self) -> str:
        return (
            f"  {self.root}/   (cocostuff-10k-v1.1)\n"
            f"    images/<name>.jpg\n"
            f"    annotations/<name>.mat   (S: COCO id, 0 = unlabeled)\n"
            f"    imageLists/{self.LISTS.get(self.split, self.split)}.txt"
        )

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        ann_dir = self.root / "annotations"
        self.require_dirs(self.image_dir(), ann_dir, self.root / "imageLists")
        list_file = self.root / "imageLists" / f"{self.LISTS.get(self.split, self.split)}.txt"
        pairs, missing = [], []
        for name in read_names(list_file):
            image = next((p for p in (self.image_dir() / f"{name}.jpg", self.image_dir() / "train2014" / f"{name}.jpg",
                                      self.image_dir() / "test2014" / f"{name}.jpg") if p.is_file()), None)
            label = ann_dir / f"{name}.mat"
            if image is None or not label.is_file():
                missing.append(f"{name}.jpg" if image is None else label.name)
            pairs.append((image, label))
        if missing:
            raise DatasetError(f"files named in {list_file} are missing: " + list_unmatched("files", missing))
        return pairs

    def read_raw_label(self, path: Path) -> np.ndarray:
        return read_mat_label(path, lambda mat: mat["S"], "'S' map", "sbd")
