"""The per-process training batch from ``data.batch_size`` or ``data.global_batch_size``."""
from __future__ import annotations

from typing import Optional

from segattn.data.errors import DatasetError


def per_process_batch(batch_size: Optional[int], global_batch_size: Optional[int], processes: int) -> int:
    """``batch_size`` as given (per process), or ``global_batch_size / processes`` (which must divide).

    Exactly one of the two is set; ``processes`` is devices x nodes.
    """
    if (batch_size is None) == (global_batch_size is None):
        found = f"data.batch_size={batch_size}, data.global_batch_size={global_batch_size}"
        raise DatasetError(f"expected exactly one of data.batch_size (per process) and data.global_batch_size "
                           f"(over all processes), the other null; found {found}")
    if global_batch_size is None:
        return int(batch_size)
    global_batch_size = int(global_batch_size)
    if global_batch_size <= 0 or global_batch_size % processes:
        raise DatasetError(f"data.global_batch_size={global_batch_size} must be a positive multiple of the "
                           f"{processes} training processes (devices x nodes); found remainder "
                           f"{global_batch_size % processes}")
    return global_batch_size // processes
