"""Small deterministic data in the COCO-Stuff 164k and 10k layouts, for tests and quick checks."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from segattn.data.coco_stuff import USED_IDS
from segattn.data.synthetic_pascal import render, shapes_layout, write_jpg, write_list

UNLABELED_164K = 255


def generate_coco_stuff164k(root: str | Path, num_train: int = 4, num_val: int = 2, height: int = 48, width: int = 64,
                            seed: int = 0) -> Path:
    """Write ``root/images/{train2017,val2017}/<id>.jpg`` and ``root/annotations/.../<id>.png`` (COCO id - 1 of
    used ids, 255 unlabeled background). Returns ``root``."""
    root = Path(root)
    values = np.asarray(USED_IDS) - 1
    for split_no, (split, count) in enumerate((("train2017", num_train), ("val2017", num_val))):
        for i in range(count):
            rng = np.random.default_rng([seed, 40 + split_no, i])
            layout = shapes_layout(rng, height, width, values, UNLABELED_164K)
            write_jpg(root / "images" / split / f"{i:012d}.jpg", render(layout, rng))
            (root / "annotations" / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "annotations" / split / f"{i:012d}.png"), layout)
    return root


def generate_coco_stuff10k(root: str | Path, num_train: int = 4, num_val: int = 2, height: int = 48, width: int = 64,
                           seed: int = 0) -> Path:
    """Write ``cocostuff-10k-v1.1`` as shipped: ``images/<name>.jpg``, ``annotations/<name>.mat`` (``S`` = COCO id,
    0 unlabeled background) and ``imageLists/{train,test}.txt``; needs scipy. Returns ``root``."""
    from scipy.io import savemat

    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split_no, (split, count) in enumerate((("train", num_train), ("test", num_val))):
        names = [f"COCO_train2014_{split_no}{i:011d}" for i in range(count)]
        for i, name in enumerate(names):
            rng = np.random.default_rng([seed, 50 + split_no, i])
            layout = shapes_layout(rng, height, width, np.asarray(USED_IDS), 0)
            write_jpg(root / "images" / f"{name}.jpg", render(layout, rng))
            savemat(root / "annotations" / f"{name}.mat", {"S": layout.astype(np.uint16)})
        write_list(root / "imageLists" / f"{split}.txt", names)
    return root
