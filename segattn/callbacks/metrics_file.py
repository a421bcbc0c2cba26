"""Callback writing the latest validation metrics to ``metrics.json`` (atomically, rank 0 only)."""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from segattn.utils.io import write_json


def peak_memory_mib(device: torch.device) -> tuple[float, str]:
    """Peak memory of this process so far: CUDA tensor bytes allocated on a GPU, else the peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**20 if sys.platform == "darwin" else 2**10), "process_peak_rss"


class MetricsFile(pl.Callback):
    """After each validation, write ``pl_module.val_metrics`` (mIoU, aAcc, mAcc in percent, per_class) to
    ``path``, with the training time so far and the peak memory of the process."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking and pl_module.val_metrics is not None:
            memory, kind = peak_memory_mib(pl_module.device)
            write_json(self.path, {**pl_module.val_metrics, "seconds": round(time.perf_counter() - self.start, 1),
                                   "peak_memory_mib": round(memory, 1), "peak_memory_kind": kind})
