"""Prediction images: colour masks, overlays and label-id PNGs (predict, the demo) and the split writer
(``eval.save_predictions``: Cityscapes server format + colour masks and overlays)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from segattn.evaluation.report import save_color_png, save_label_png, save_overlay


def palette_or_fixed(palette: Optional[Sequence[Sequence[int]]], num_classes: int) -> list[list[int]]:
    """``palette``, or a fixed random one (seed 0) for a model that has none."""
    if palette:
        return [list(c) for c in palette]
    return np.random.default_rng(0).integers(0, 256, (num_classes, 3)).tolist()


def write_prediction_images(base: Path, image: np.ndarray, pred: np.ndarray, palette, label_ids: bool = False) -> None:
    """``<base>_color.png`` (palette PNG of the ids), ``<base>_overlay.png`` and, with ``label_ids``,
    ``<base>_labels.png`` (the ids as grey values); ``image`` H x W x 3 uint8 RGB, ``pred`` H x W uint8."""
    save_color_png(f"{base}_color.png", pred, palette)
    save_overlay(f"{base}_overlay.png", image, pred, palette)
    if label_ids:
        save_label_png(f"{base}_labels.png", pred)


class SplitPredictionWriter:
    """``eval.save_predictions``: Cityscapes label-id PNGs in a folder of their own, colour masks and overlays."""

    def __init__(self, out: Path, dataset, palette, cityscapes: bool):
        self.results = out / "cityscapes_results" if cityscapes else None
        self.visual, self.dataset, self.palette = out / "visual", dataset, palette

    def __call__(self, name: str, pred: np.ndarray) -> None:
        """``pred``: HxW uint8 train ids of the image ``name`` (relative to the split's image folder)."""
        from segattn.data.cityscapes import train_ids_to_label_ids
        from segattn.data.files import read_image

        if self.results is not None:  # flat folder of <city>_<seq>_<frame>_leftImg8bit.png only
            save_label_png(self.results / Path(name).name, train_ids_to_label_ids(pred))
        image = read_image(self.dataset.image_dir() / name)
        write_prediction_images(self.visual / Path(name).with_suffix(""), image, pred, self.palette)

    def folders(self) -> dict:
        folders = {"visual_folder": str(self.visual)}
        if self.results is not None:
            folders["cityscapes_results_folder"] = str(self.results)
        return folders
