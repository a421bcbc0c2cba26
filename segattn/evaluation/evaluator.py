"""The split evaluator: every image of a split through a Predictor, one confusion matrix (and the Cityscapes
iIoU), split across processes under torchrun / srun, reports written on rank 0."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix
from tqdm import tqdm

from segattn.constants import IGNORE_INDEX
from segattn.data.cityscapes import CityscapesDataset
from segattn.evaluation.cityscapes_extras import InstanceIoU, category_iou, instance_ids_path
from segattn.evaluation.distributed import init_from_env, prepare_once, shard_loader
from segattn.evaluation.metrics import format_table, metrics_from_confusion
from segattn.evaluation.report import write_reports
from segattn.evaluation.settings import EvaluationError
from segattn.evaluation.writers import SplitPredictionWriter
from segattn.inference.predictor import Predictor


class InstanceMaps:
    """The ``*_gtFine_instanceIds.png`` of a Cityscapes split, feeding the official iIoU metric."""

    def __init__(self, dataset, device: torch.device):
        self.paths = {p.name: instance_ids_path(dataset.root, dataset.split, p.name) for p, _ in dataset.samples}
        missing = sum(not p.is_file() for p in self.paths.values())
        self.missing = f"{missing} of {len(self.paths)} images have no *_gtFine_instanceIds.png" if missing else None
        self.metric = InstanceIoU().to(device)

    def update(self, name: str, pred: np.ndarray) -> None:
        """``pred``: HxW train ids of the image ``name`` (relative to the split's image folder)."""
        path = self.paths[Path(name).name]
        instance_ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if instance_ids is None:
            raise EvaluationError(f"cannot decode instance map {path}")
        self.metric.update(pred, instance_ids.astype(np.int64))


def has_labels(dataset) -> bool:
    """False for a split whose first mask is all IGNORE_INDEX (e.g. Cityscapes test)."""
    return not bool((dataset[0]["mask"] == IGNORE_INDEX).all())


def evaluate_split(model, datamodule, out: Path, settings: dict, split: str, device: torch.device,
                   passes: dict, save_predictions: bool = False) -> Optional[dict]:
    """Predict every image of ``split`` with ``passes`` (:class:`Predictor` arguments), write predictions
    (optional) and the reports to ``out``; return the metrics on rank 0 (None elsewhere, or without labels)."""
    rank, world, device = init_from_env(device)  # device first, then the process group
    prepare_once(datamodule, rank)
    loader = datamodule.val_dataloader()
    dataset = loader.dataset
    loader = shard_loader(loader, rank, world)
    labelled = has_labels(dataset)
    if not labelled and not save_predictions:
        raise EvaluationError(
            f"split '{split}' of {type(dataset).__name__} under {dataset.root} has no labels (its masks are "
            f"all 255), so no metrics can be computed: evaluate a labelled split (eval.split=val), or export "
            f"predictions only with eval.save_predictions=true"
        )
    predictor = Predictor(model, device, **passes, flip_pairs=getattr(datamodule, "flip_pairs", ()))
    confusion = MulticlassConfusionMatrix(datamodule.num_classes, ignore_index=IGNORE_INDEX).to(device)
    is_cityscapes = isinstance(dataset, CityscapesDataset)
    instances = InstanceMaps(dataset, device) if is_cityscapes and labelled else None
    use_instances = instances is not None and not instances.missing
    if instances is not None and instances.missing:
        print(f"iIoU skipped: {instances.missing}", file=sys.stderr)
    writer = SplitPredictionWriter(out, dataset, datamodule.palette, is_cityscapes) if save_predictions else None
    start = time.perf_counter()
    for batch in tqdm(loader, desc=f"evaluate {split}", unit="batch", dynamic_ncols=True, disable=rank > 0):
        mask = batch["mask"].to(device)
        pred = predictor(batch["image"], mask.shape[-2:])
        if labelled:
            confusion.update(pred, mask)
        if use_instances or writer is not None:
            for name, p in zip(batch["name"], pred.to(torch.uint8).cpu().numpy()):
                if use_instances:
                    instances.update(name, p)
                if writer is not None:
                    writer(name, p)
    count = len(dataset)
    settings.update({
        "dataset": type(dataset).__name__, "data_root": str(dataset.root), "split": split, "images": count,
        "labelled": labelled, "device": str(device), "precision": predictor.precision,
        "seconds_per_image": round(predictor.seconds / max(len(loader.dataset), 1), 4),
        "wall_seconds_per_image": round((time.perf_counter() - start) / count, 4),
        **(writer.folders() if writer else {}), "processes": world,
    })
    matrix = confusion.compute().cpu() if labelled else None  # summed over processes
    iiou = instances.metric.compute(matrix) if use_instances else None  # summed over processes too
    if rank > 0:
        return None
    if not labelled:
        write_reports(out, None, None, settings)
        print(f"No labels in split '{split}': predictions written to {out}")
        return None
    metrics = metrics_from_confusion(matrix, datamodule.class_names)
    cityscapes = None
    if is_cityscapes:
        cityscapes = category_iou(matrix)
        cityscapes.update(iiou if use_instances else {"iIoU_missing": instances.missing})
    write_reports(out, metrics, matrix, settings, cityscapes)
    print(format_table(metrics))
    print(f"\nReports written to {out}")
    return metrics
