"""Evaluation reports and prediction images, every file written atomically (temporary file + rename).

Files written by :func:`write_reports` in the output folder:

- ``report.md``: summary (mIoU, aAcc, mAcc, fwIoU), per-class table, Cityscapes extras, settings.
- ``metrics.json``: ``mIoU``, ``aAcc``, ``mAcc``, ``fwIoU`` (percent), ``per_class``
  (``{name: {"IoU", "Acc"}}``, percent, null when undefined), ``absent`` (classes in neither
  truth nor prediction, left out of the means), ``confusion`` (KxK pixel counts, rows = truth),
  ``cityscapes`` (Cityscapes only: ``per_category``, ``mIoU_category`` and, with instance maps,
  ``iIoU``, ``per_class_iIoU``, ``per_category_iIoU``, ``iIoU_category``), ``settings``.
- ``per_class.csv``: ``class,IoU,Acc`` (percent, empty when undefined).
- ``confusion.png``: row-normalised confusion matrix; ``per_class_iou.png``: per-class IoU bars.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from segattn.evaluation.metrics import format_table  # noqa: E402
from segattn.visualization.draw import overlay  # noqa: E402
from segattn.utils.io import atomic_path, write_json, write_text  # noqa: E402


def _save_image(path: str | os.PathLike, image: Image.Image) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def save_label_png(path: str | os.PathLike, ids: np.ndarray) -> None:
    """HxW uint8 class ids as a single-channel PNG (e.g. Cityscapes label ids for the benchmark)."""
    _save_image(path, Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8), mode="L"))


def save_color_png(path: str | os.PathLike, train_ids: np.ndarray, palette: Sequence[Sequence[int]]) -> None:
    """HxW train ids as a palette PNG: shows the class colours, pixel values stay the train ids."""
    image = Image.fromarray(np.ascontiguousarray(train_ids, dtype=np.uint8), mode="P")
    flat = [c for rgb in palette for c in rgb]
    image.putpalette(flat + [0] * (768 - len(flat)))
    _save_image(path, image)


def save_overlay(path: str | os.PathLike, image: np.ndarray, train_ids: np.ndarray,
                 palette: Sequence[Sequence[int]], alpha: float = 0.5) -> None:
    """HxWx3 uint8 RGB image blended with the class colours of HxW ``train_ids`` (255 keeps the image)."""
    _save_image(path, Image.fromarray(overlay(image, train_ids, palette, alpha), mode="RGB"))


def _save_figure(path: Path, fig) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(path: str | os.PathLike, confusion, class_names: Sequence[str]) -> None:
    """Row-normalised confusion matrix (viridis), class names on both axes."""
    conf = torch.as_tensor(confusion).to("cpu", torch.float64).numpy()
    rows = conf.sum(1, keepdims=True)
    norm = np.divide(conf, rows, out=np.zeros_like(conf), where=rows > 0)
    k = len(class_names)
    size = min(30.0, max(6.0, 0.35 * k))
    font = max(3.0, min(9.0, 300.0 / k))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(k), class_names, rotation=90, fontsize=font)
    ax.set_yticks(range(k), class_names, fontsize=font)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title("Confusion matrix (each row sums to 1)")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    _save_figure(Path(path), fig)


def plot_per_class_iou(path: str | os.PathLike, metrics: dict) -> None:
    """Horizontal bar per class (IoU %, 'n/a' for absent classes), mIoU as a dashed line."""
    names = list(metrics["per_class"])
    values = [row["IoU"] for row in metrics["per_class"].values()]
    k = len(names)
    font = max(3.0, min(9.0, 300.0 / k))
    fig, ax = plt.subplots(figsize=(8, min(40.0, max(3.0, 0.25 * k))))
    widths = [v or 0.0 for v in values]
    bars = ax.barh(range(k), widths, color=plt.cm.viridis(np.asarray(widths) / 100))
    for bar, value in zip(bars, values):
        label = "n/a" if value is None else f"{value:.1f}"
        ax.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=font)
    ax.axvline(metrics["mIoU"], color="black", linestyle="--", linewidth=1, label=f"mIoU {metrics['mIoU']:.2f}")
    ax.set_yticks(range(k), names, fontsize=font)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("IoU (%)")
    ax.legend(loc="lower right")
    _save_figure(Path(path), fig)


def per_class_csv(metrics: dict) -> str:
    """``class,IoU,Acc`` rows in percent (empty cell when undefined)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["class", "IoU", "Acc"])
    for name, row in metrics["per_class"].items():
        writer.writerow([name] + ["" if row[key] is None else f"{row[key]:.4f}" for key in ("IoU", "Acc")])
    return buffer.getvalue()


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _cityscapes_markdown(extras: dict) -> list[str]:
    inst = extras.get("per_category_iIoU")
    lines = ["## Cityscapes extras", ""]
    if inst is None:
        lines += ["| Category | IoU |", "|---|---:|"]
        lines += [f"| {name} | {_fmt(v)} |" for name, v in extras["per_category"].items()]
        lines += [f"| **mean** | {_fmt(extras['mIoU_category'])} |", "", f"iIoU not computed: {extras['iIoU_missing']}"]
        return lines + [""]
    lines += ["| Category | IoU | iIoU |", "|---|---:|---:|"]
    lines += [f"| {name} | {_fmt(v)} | {_fmt(inst[name]) if name in inst else ''} |"
              for name, v in extras["per_category"].items()]
    lines += [f"| **mean** | {_fmt(extras['mIoU_category'])} | {_fmt(extras['iIoU_category'])} |", "",
              "| Instance class | iIoU |", "|---|---:|"]
    lines += [f"| {name} | {_fmt(v)} |" for name, v in extras["per_class_iIoU"].items()]
    lines.append(f"| **iIoU (mean)** | {_fmt(extras['iIoU'])} |")
    return lines + [""]


def markdown_report(metrics: Optional[dict], settings: dict, cityscapes: Optional[dict] = None) -> str:
    """The text of ``report.md``; ``metrics`` is None for a split without labels."""
    lines = [f"# Evaluation of `{Path(settings['checkpoint']).name}`", ""]
    if metrics is None:
        lines += ["No labels in this split: predictions only, no metrics.", ""]
    else:
        lines += ["## Metrics (percent)", "", format_table(metrics), ""]
        if cityscapes is not None:
            lines += _cityscapes_markdown(cityscapes)
        lines += ["![confusion matrix](confusion.png)", "", "![per-class IoU](per_class_iou.png)", ""]
    lines += ["## Settings", "", "| Setting | Value |", "|---|---|"]
    lines += [f"| {key} | `{value}` |" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def write_reports(out_dir: str | os.PathLike, metrics: Optional[dict], confusion, settings: dict,
                  cityscapes: Optional[dict] = None) -> None:
    """Write report.md, metrics.json and (with metrics) per_class.csv, confusion.png, per_class_iou.png."""
    out = Path(out_dir)
    payload = {"settings": settings}
    if metrics is not None:
        class_names = list(metrics["per_class"])
        payload = {**metrics, "confusion": torch.as_tensor(confusion).cpu().tolist(), **payload}
        if cityscapes is not None:
            payload["cityscapes"] = cityscapes
        write_text(out / "per_class.csv", per_class_csv(metrics))
        plot_confusion(out / "confusion.png", confusion, class_names)
        plot_per_class_iou(out / "per_class_iou.png", metrics)
    write_json(out / "metrics.json", _nan_to_none(payload))
    write_text(out / "report.md", markdown_report(metrics, settings, cityscapes))


def _nan_to_none(value):
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value
