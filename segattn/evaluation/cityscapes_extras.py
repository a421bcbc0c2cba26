"""Cityscapes benchmark extras: category IoU and instance-weighted iIoU.

The definitions follow the official ``cityscapesscripts/evaluation/evalPixelLevelSemanticLabeling.py``:

- category IoU: the confusion matrix summed in blocks of the 7 categories (flat, construction,
  object, nature, sky, human, vehicle); a pixel is a true positive when truth and prediction are
  in the same category. Ignored ground truth never counts (it is not in the matrix).
- iIoU of an instance class c: iTP / (iTP + FP + iFN), where every ground-truth instance's
  TP and FN pixels are weighted by ``AVG_INSTANCE_SIZE[c] / instance size`` and FP is the plain
  false-positive count of the confusion matrix. Instances come from ``*_gtFine_instanceIds.png``
  (id = label_id * 1000 + index; ids <= 1000 are not instances). Category iIoU likewise for
  human and vehicle, whose instance pixels count as TP when predicted as any class of the category.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchmetrics import Metric

# The 19 evaluated classes in train-id order: (name, official label id, category).
CLASSES = (
    ("road", 7, "flat"), ("sidewalk", 8, "flat"), ("building", 11, "construction"),
    ("wall", 12, "construction"), ("fence", 13, "construction"), ("pole", 17, "object"),
    ("traffic light", 19, "object"), ("traffic sign", 20, "object"), ("vegetation", 21, "nature"),
    ("terrain", 22, "nature"), ("sky", 23, "sky"), ("person", 24, "human"), ("rider", 25, "human"),
    ("car", 26, "vehicle"), ("truck", 27, "vehicle"), ("bus", 28, "vehicle"), ("train", 31, "vehicle"),
    ("motorcycle", 32, "vehicle"), ("bicycle", 33, "vehicle"),
)
LABEL_IDS = tuple(label_id for _, label_id, _ in CLASSES)
CATEGORIES = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
INSTANCE_CATEGORIES = ("human", "vehicle")
# Official average instance size in pixels (``args.avgClassSize``) of the evaluated instance classes.
AVG_INSTANCE_SIZE = {
    "person": 3462.4756337644, "rider": 3930.4788056518, "car": 12794.0202738185,
    "truck": 27855.1264367816, "bus": 35732.1511111111, "train": 67583.7075812274,
    "motorcycle": 6298.7200839748, "bicycle": 4672.3249222261,
}
INSTANCE_TRAIN_IDS = tuple(i for i, (name, _, _) in enumerate(CLASSES) if name in AVG_INSTANCE_SIZE)
_CATEGORY_OF_TRAIN_ID = np.array([CATEGORIES.index(category) for _, _, category in CLASSES])


def _iou(tp: float, fp: float, fn: float) -> float | None:
    denom = tp + fp + fn
    return None if denom == 0 else 100.0 * tp / denom


def category_iou(confusion) -> dict:
    """19x19 train-id confusion (rows = truth) -> ``{"per_category": {name: IoU %|None}, "mIoU_category": %|None}``."""
    conf = torch.as_tensor(confusion).to("cpu", torch.float64).numpy()
    if conf.shape != (len(CLASSES),) * 2:
        raise ValueError(f"Cityscapes category IoU needs a 19x19 confusion matrix, got {conf.shape}")
    per_category = {}
    for c, name in enumerate(CATEGORIES):
        inside = _CATEGORY_OF_TRAIN_ID == c
        tp = conf[np.ix_(inside, inside)].sum()
        fn = conf[inside].sum() - tp
        fp = conf[np.ix_(~inside, inside)].sum()
        per_category[name] = _iou(tp, fp, fn)
    return {"per_category": per_category, "mIoU_category": _mean(per_category.values())}


def _mean(values) -> float | None:
    valid = [v for v in values if v is not None]
    return sum(valid) / len(valid) if valid else None


def instance_ids_path(root: str | Path, split: str, image_name: str) -> Path:
    """``<root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png`` of an image name."""
    stem = Path(image_name).name.replace("_leftImg8bit.png", "")
    return Path(root) / "gtFine" / split / stem.split("_")[0] / f"{stem}_gtFine_instanceIds.png"


class InstanceIoU(Metric):
    """The instance-weighted TP / FN of the official iIoU over a split: summed states, so torchmetrics adds
    them up across processes in ``compute``; the FP come from the split's confusion matrix."""

    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(compute_with_cache=False, **kwargs)
        for name, size in (("tp", len(CLASSES)), ("fn", len(CLASSES)),
                           ("category_tp", len(INSTANCE_CATEGORIES)), ("category_fn", len(INSTANCE_CATEGORIES))):
            self.add_state(name, torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: np.ndarray, instance_ids: np.ndarray) -> None:
        """``pred``: HxW train ids; ``instance_ids``: HxW official instance ids of the same image."""
        pred, instance_ids = np.asarray(pred), np.asarray(instance_ids)
        if pred.shape != instance_ids.shape:
            raise ValueError(f"prediction {pred.shape} and instance map {instance_ids.shape} differ in size")
        tp, fn = np.zeros(len(CLASSES)), np.zeros(len(CLASSES))
        category_tp, category_fn = np.zeros(len(INSTANCE_CATEGORIES)), np.zeros(len(INSTANCE_CATEGORIES))
        is_instance = instance_ids > 1000
        ids, index, sizes = np.unique(instance_ids[is_instance], return_inverse=True, return_counts=True)
        pred = pred[is_instance]
        label_to_train = {LABEL_IDS[t]: t for t in INSTANCE_TRAIN_IDS}
        for k, inst in enumerate(ids):
            train_id = label_to_train.get(int(inst) // 1000)
            if train_id is None:  # caravan, trailer: ignored in evaluation
                continue
            pixels = pred[index == k]
            weight = AVG_INSTANCE_SIZE[CLASSES[train_id][0]] / sizes[k]
            hits = np.count_nonzero(pixels == train_id)
            tp[train_id] += hits * weight
            fn[train_id] += (sizes[k] - hits) * weight
            category = INSTANCE_CATEGORIES.index(CLASSES[train_id][2])
            category_hits = np.count_nonzero(_CATEGORY_OF_TRAIN_ID[pixels] == CATEGORIES.index(CLASSES[train_id][2]))
            category_tp[category] += category_hits * weight
            category_fn[category] += (sizes[k] - category_hits) * weight
        for name, local in (("tp", tp), ("fn", fn), ("category_tp", category_tp), ("category_fn", category_fn)):
            state = getattr(self, name)
            state += torch.as_tensor(local, dtype=state.dtype, device=state.device)

    def compute(self, confusion) -> dict:
        """iIoU in percent (None when undefined) from the accumulated instances and the confusion's FP.

        Returns ``{"per_class_iIoU": {name: ..}, "iIoU": mean, "per_category_iIoU": {"human": ..,
        "vehicle": ..}, "iIoU_category": mean}``.
        """
        conf = torch.as_tensor(confusion).to("cpu", torch.float64).numpy()
        tp, fn = self.tp.cpu().numpy(), self.fn.cpu().numpy()
        fp = conf.sum(0) - np.diag(conf)
        per_class = {CLASSES[t][0]: _iou(tp[t], fp[t], fn[t]) for t in INSTANCE_TRAIN_IDS}
        per_category = {}
        for c, category in enumerate(INSTANCE_CATEGORIES):
            inside = _CATEGORY_OF_TRAIN_ID == CATEGORIES.index(category)
            fp_category = conf[np.ix_(~inside, inside)].sum()
            per_category[category] = _iou(float(self.category_tp[c]), fp_category, float(self.category_fn[c]))
        return {"per_class_iIoU": per_class, "iIoU": _mean(per_class.values()),
                "per_category_iIoU": per_category, "iIoU_category": _mean(per_category.values())}
