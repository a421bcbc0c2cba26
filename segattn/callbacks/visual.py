"""Callbacks that draw: fixed validation images at every validation, training curves at the end of a run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import TensorBoardLogger

from segattn.visualization.curves import plot_training_curves
from segattn.visualization.draw import figure_png, png_array, save_png
from segattn.visualization.grids import prediction_grid


class ValidationImages(pl.Callback):
    """After every validation (not the sanity check), on rank 0: predict ``num_images`` fixed images
    of the validation set (spread evenly over it), draw image | ground truth | prediction | errors in
    the dataset's palette (:func:`~segattn.visualization.grids.prediction_grid`), log the grid to
    TensorBoard as ``val/predictions`` and save it as ``<out_dir>/step_<global step>.png``.

    Needs ``trainer.datamodule.palette``, ``pl_module.class_names`` and ``pl_module.model`` (a Segmentor).
    """

    def __init__(self, out_dir: str | Path, num_images: int = 4):
        if num_images < 1:
            raise ValueError(f"ValidationImages needs num_images >= 1, got {num_images}")
        self.out_dir, self.num_images = Path(out_dir), num_images

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        loaders = trainer.val_dataloaders
        dataset = (loaders[0] if isinstance(loaders, (list, tuple)) else loaders).dataset
        picks = np.unique(np.linspace(0, len(dataset) - 1, min(self.num_images, len(dataset))).round().astype(int))
        samples = []
        for index in picks.tolist():
            item = dataset[index]
            image, mask = dataset.load(index)
            samples.append((Path(item["name"]).name, image, mask, self._predict(pl_module, item["image"], mask.shape)))
        step = trainer.global_step
        fig = prediction_grid(samples, trainer.datamodule.palette, pl_module.class_names, title=f"validation, step {step}")
        png = figure_png(fig)
        save_png(self.out_dir / f"step_{step:07d}.png", png)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/predictions", png_array(png), step, dataformats="HWC")

    @staticmethod
    def _predict(pl_module: pl.LightningModule, image: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """3xhxw normalised image -> HxW uint8 train ids at the label's ``size`` (model in eval mode)."""
        model = pl_module.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits = model(image[None].to(pl_module.device, pl_module.dtype))
            if logits.shape[-2:] != tuple(size):
                logits = F.interpolate(logits, size=tuple(size), mode="bilinear",
                                       align_corners=getattr(model, "align_corners", False))
        model.train(was_training)
        return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()


class TrainingCurves(pl.Callback):
    """When ``fit`` or ``validate`` ends normally, on rank 0: draw ``out_path`` (train loss, val mIoU
    and learning rates against step) from the CSV log ``csv_path``
    (:func:`~segattn.visualization.curves.plot_training_curves`)."""

    def __init__(self, csv_path: str | Path, out_path: str | Path):
        self.csv_path, self.out_path = Path(csv_path), Path(out_path)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and stage in ("fit", "validate") and self.csv_path.is_file():
            plot_training_curves(self.csv_path, self.out_path)
