"""Read image and label files once, with errors that name the file (also inside DataLoader workers)."""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segattn.data.errors import DatasetError

_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
_IMREAD_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)  # OpenCV >= 4.10 decodes straight to RGB


def read_bytes(path: Path) -> np.ndarray:
    """The file's bytes (uint8 array); one error for unreadable, empty or truncated PNG / JPEG files."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    if data.size == 0:
        raise DatasetError(f"{path} is empty (0 bytes); re-download it")
    head, tail = data[:4].tobytes(), data[-16:].tobytes()
    truncated = (head.startswith(b"\x89PNG") and _PNG_END not in tail) or (
        head.startswith(b"\xff\xd8") and _JPEG_END not in tail
    )
    if truncated:
        raise DatasetError(f"{path} is truncated (file ends before the end-of-image marker); re-download it")
    return data


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to RGB uint8, HxWx3."""
    path = Path(path)
    img = cv2.imdecode(read_bytes(path), _IMREAD_RGB if _IMREAD_RGB is not None else cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot decode image {path} (not an image file, or corrupt)")
    return img if _IMREAD_RGB is not None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_label(path: str | Path) -> np.ndarray:
    """Decode a single-channel 8-bit (or palette) label file to uint8 class ids, HxW."""
    path = Path(path)
    data = read_bytes(path)
    label = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if label is not None and label.ndim == 3:  # palette PNG: OpenCV expands it, PIL keeps the indices
        with Image.open(io.BytesIO(data.tobytes())) as pil:
            if pil.mode == "P":
                label = np.asarray(pil)
    if label is None:
        raise DatasetError(f"cannot decode label {path} (not an image file, or corrupt)")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DatasetError(
            f"label {path} must be a single-channel 8-bit image of class ids, "
            f"found shape {label.shape} dtype {label.dtype}"
        )
    return label
