"""Checkpoint I/O that never leaves a half-written checkpoint: write beside, then rename."""
from __future__ import annotations

from typing import Any, Optional

from pytorch_lightning.plugins import TorchCheckpointIO

from segattn.utils.io import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint I/O, made atomic: ``last.ckpt`` survives a kill at any moment."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)
