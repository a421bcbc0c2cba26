"""Callback writing the latest validation metrics to ``metrics.json`` (atomically, rank 0 only)."""
from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from segattn.utils.io import write_json


class MetricsFile(pl.Callback):
    """After each validation, write ``pl_module.val_metrics`` (mIoU, aAcc, mAcc in percent, per_class) to ``path``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking and pl_module.val_metrics is not None:
            write_json(self.path, pl_module.val_metrics)
