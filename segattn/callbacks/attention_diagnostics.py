"""Callback: is each attention block engaged, and how far does it look? Logged while the run trains."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from segattn.diagnostics.gates import ENGAGED_THRESHOLD, gate_values, gated_blocks, never_engaged_message
from segattn.diagnostics.gating import gating_blocks
from segattn.diagnostics.measure import has_attention_maps, measure_on_batch
from segattn.utils.io import write_json


class AttentionDiagnostics(pl.Callback):
    """Every ``trainer.log_every_n_steps`` training steps: ``attention/<block>/gate`` of every CCA, PAM,
    CAM and non-local block (:func:`~segattn.diagnostics.gates.gate_values`). After every validation,
    on rank 0, on ``num_images`` fixed validation images (centre crops of at most ``crop`` x ``crop``
    pixels): ``entropy``, ``distance_px``, ``beyond_cross`` (criss-cross) and SE/CBAM ``mean_gate``
    (:func:`~segattn.diagnostics.measure.measure_on_batch`), sent to every logger and written with the
    gates to ``json_path``. When fit ends, one line per block whose |gate| never reached ``threshold``.

    A model without any of these blocks (FCN) costs nothing. The largest |gate| seen is kept in checkpoints.
    """

    def __init__(self, json_path: Optional[str | Path] = None, num_images: int = 2, crop: int = 512,
                 threshold: float = ENGAGED_THRESHOLD):
        if num_images < 1 or crop < 8:
            raise ValueError(f"AttentionDiagnostics needs num_images >= 1 and crop >= 8, got {num_images} and {crop}")
        self.json_path = Path(json_path) if json_path else None
        self.num_images, self.crop, self.threshold = num_images, crop, threshold
        self.largest: dict[str, float] = {}  # block -> largest |gate| seen so far
        self.latest: dict[str, float] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self._read_gates(pl_module)
            if self.latest:
                pl_module.log_dict({f"attention/{name}/gate": value for name, value in self.latest.items()},
                                   on_step=True, on_epoch=False)

    def _read_gates(self, pl_module: pl.LightningModule) -> None:
        self.latest = gate_values(gated_blocks(pl_module.model))
        for name, value in self.latest.items():
            if math.isfinite(value):
                self.largest[name] = max(self.largest.get(name, 0.0), abs(value))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        model = pl_module.model
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        self._read_gates(pl_module)
        if not (has_attention_maps(model) or gating_blocks(model)):
            return
        stats: dict[str, float] = {}
        images = self._fixed_images(trainer)
        for image in images:  # one at a time: validation images may differ in size
            for key, value in measure_on_batch(model, image[None].to(pl_module.device)).items():
                stats[key] = stats.get(key, 0.0) + value / len(images)
        stats = {key: value for key, value in stats.items() if math.isfinite(value)}
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=trainer.global_step)
        if self.json_path is not None:
            write_json(self.json_path, {"step": trainer.global_step, "gates": self.latest,
                                        "largest_abs_gate": self.largest, "engaged": self._engaged(),
                                        "reach": stats})

    def _fixed_images(self, trainer: pl.Trainer) -> list[torch.Tensor]:
        """``num_images`` validation images spread evenly over the set, centre-cropped to ``crop``."""
        loaders = trainer.val_dataloaders
        dataset = (loaders[0] if isinstance(loaders, (list, tuple)) else loaders).dataset
        picks = np.unique(np.linspace(0, len(dataset) - 1, min(self.num_images, len(dataset))).round().astype(int))
        images = []
        for index in picks.tolist():
            image = dataset[index]["image"]
            h, w = image.shape[-2:]
            top, left = max(0, (h - self.crop) // 2), max(0, (w - self.crop) // 2)
            images.append(image[:, top:top + self.crop, left:left + self.crop])
        return images

    def _engaged(self) -> dict[str, bool]:
        return {name: largest >= self.threshold for name, largest in self.largest.items()}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._read_gates(pl_module)
        blocks = gated_blocks(pl_module.model)
        for name, engaged in self._engaged().items():
            if not engaged:
                rank_zero_info(never_engaged_message(name, blocks[name], self.largest[name], trainer.global_step,
                                                     self.threshold))

    def state_dict(self) -> dict[str, Any]:
        return {"largest": dict(self.largest)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.largest = dict(state_dict.get("largest", {}))
