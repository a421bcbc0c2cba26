"""Per-step seeding: the randomness of a training step depends on (seed, rank, step), not on history."""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from segattn.utils.resumable import derive_seed, seed_all


class StepSeeds(pl.Callback):
    """Before every training batch, seed Python, NumPy and torch from (seed, rank, global step, batch index).

    Dropout masks and any other draw of a step are then the same in a resumed run as in an uninterrupted
    one (whatever validation or checkpointing drew in between), and differ between DDP processes.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        seed_all(derive_seed(self.seed, trainer.global_rank, trainer.global_step, batch_idx))
