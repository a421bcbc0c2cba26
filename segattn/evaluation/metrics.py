"""Segmentation metrics from a confusion matrix (rows = ground truth, columns = prediction).

Ignored pixels (label 255) must never reach the matrix; torchmetrics
``MulticlassConfusionMatrix(num_classes=K, ignore_index=255)`` accumulates it that way, so a
prediction on an ignored pixel costs nothing, as in the official Cityscapes script.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

SUMMARY_KEYS = ("mIoU", "aAcc", "mAcc", "fwIoU")


def _percent(x: float) -> float | None:
    return None if math.isnan(x) else 100.0 * x


def metrics_from_confusion(confusion, class_names: Sequence[str]) -> dict:
    """Per-class IoU/accuracy and their summaries from a KxK count matrix.

    IoU_k = TP / (TP + FP + FN); Acc_k = TP / (TP + FN) (recall);
    mIoU, mAcc = means over classes with a defined value; aAcc = trace / total;
    fwIoU = sum_k (GT pixels of k / total) * IoU_k.
    A class absent from both ground truth and prediction has IoU and Acc NaN (None here), is
    left out of the means and listed under ``"absent"``. A class predicted but absent from
    ground truth has IoU 0 and Acc None.

    Args:
        confusion: KxK tensor or array of counts, ``confusion[t, p]`` = pixels of truth t
            predicted as p.
        class_names: the K class names, in train-id order.
    Returns:
        ``{"mIoU", "aAcc", "mAcc", "fwIoU"}`` floats in percent (NaN when nothing is labelled),
        ``"per_class": {name: {"IoU": float | None, "Acc": float | None}}`` in percent,
        ``"absent": [names]``.
    """
    conf = torch.as_tensor(confusion).detach().to("cpu", torch.float64)
    k = len(class_names)
    if conf.shape != (k, k):
        raise ValueError(
            f"confusion matrix must be {k}x{k} to match {k} class names, got shape {tuple(conf.shape)}"
        )
    tp = conf.diagonal()
    gt = conf.sum(dim=1)
    pred = conf.sum(dim=0)
    total = conf.sum()
    union = gt + pred - tp
    iou = tp / union  # NaN where the class is neither in truth nor prediction
    acc = tp / gt  # NaN where the class is not in truth
    present = ~torch.isnan(iou)
    summary = {
        "mIoU": iou.nanmean().item(),
        "aAcc": (tp.sum() / total).item(),
        "mAcc": acc.nanmean().item(),
        "fwIoU": (gt[present] * iou[present]).sum().item() / total.item() if total > 0 else math.nan,
    }
    out = {key: 100.0 * value for key, value in summary.items()}
    out["per_class"] = {
        name: {"IoU": _percent(iou[i].item()), "Acc": _percent(acc[i].item())}
        for i, name in enumerate(class_names)
    }
    out["absent"] = [name for i, name in enumerate(class_names) if not present[i]]
    return out


def _cell(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def format_table(metrics: dict) -> str:
    """Markdown tables (readable as plain text) of the summary and per-class IoU/Acc."""
    lines = ["| Metric | Value |", "|---|---:|"]
    lines += [f"| {key} | {_cell(metrics[key])} |" for key in SUMMARY_KEYS]
    width = max([len("Class")] + [len(name) for name in metrics["per_class"]])
    lines += ["", f"| {'Class':<{width}} | {'IoU':>6} | {'Acc':>6} |", f"|{'-' * (width + 2)}|-------:|-------:|"]
    for name, row in metrics["per_class"].items():
        lines.append(f"| {name:<{width}} | {_cell(row['IoU']):>6} | {_cell(row['Acc']):>6} |")
    if metrics["absent"]:
        lines += ["", "Absent from ground truth and prediction (left out of the means): "
                  + ", ".join(metrics["absent"])]
    return "\n".join(lines)
