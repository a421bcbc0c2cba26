"""Left/right class pairs (a dataset's ``FLIP_PAIRS``, e.g. LIP's arms, legs and shoes) under a horizontal flip."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def swap_table(flip_pairs: Sequence[Sequence[int]]) -> np.ndarray:
    """256-entry table mapping each class of a pair to the other (identity elsewhere, 255 stays 255)."""
    table = np.arange(256, dtype=np.uint8)
    for a, b in flip_pairs:
        table[a], table[b] = b, a
    return table
