"""Label maps stored in MATLAB files (SBD ``cls/*.mat``, COCO-Stuff 10k ``annotations/*.mat``); needs scipy."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from segattn.data.errors import DatasetError


def read_mat_label(path: Path, extract: Callable[[dict], np.ndarray], what: str, extra: str) -> np.ndarray:
    """``extract(loadmat(path))`` as a uint8 HxW map; ``what`` names the field and ``extra`` the pip extra in errors."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DatasetError(f"reading {path} needs scipy: pip install 'segattn[{extra}]'") from None
    try:
        label = np.asarray(extract(loadmat(str(path))))
    except (KeyError, IndexError, ValueError, OSError) as err:
        raise DatasetError(f"label {path} has no {what} ({type(err).__name__}: {err})") from None
    if label.ndim != 2 or label.size == 0 or label.min() < 0 or label.max() > 255:
        values = sorted({int(v) for v in np.unique(label) if not 0 <= v <= 255})[:5] if label.size else []
        raise DatasetError(f"label {path}: {what} must be a 2-d map of 0..255, found shape {label.shape}, values {values}")
    return label.astype(np.uint8)
