"""What ``predict`` accepts (uint8 array, PIL image, path, float tensor in [0, 1]) as an H x W x 3 uint8 RGB image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

CHANNEL_ORDERS = ("rgb", "bgr")


class ImageInputError(ValueError):
    """An image ``predict`` cannot read (the message says what was expected and what was found)."""


def _rgb(array: np.ndarray, what: str) -> np.ndarray:
    """H x W, H x W x 1 (grey: repeated) or H x W x 4 (alpha: dropped) -> H x W x 3."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageInputError(f"{what}: expected an H x W x 3 image (1 or 4 channels are converted), "
                              f"found shape {tuple(array.shape)}")
    return np.repeat(array, 3, -1) if array.shape[-1] == 1 else array[..., :3]


def _from_tensor(image: Tensor) -> np.ndarray:
    """A float ``3 x H x W`` / ``1 x 3 x H x W`` tensor in [0, 1] -> H x W x 3 uint8 (channels as given)."""
    if not image.is_floating_point() or image.dim() not in (3, 4) or (image.dim() == 4 and image.shape[0] != 1):
        raise ImageInputError(f"image tensor: expected float 3 x H x W or 1 x 3 x H x W in [0, 1], "
                              f"found {image.dtype} of shape {tuple(image.shape)}")
    chw = image[0] if image.dim() == 4 else image
    low, high = float(chw.min()), float(chw.max())
    if not (low >= 0.0 and high <= 1.0):  # also refuses NaN
        raise ImageInputError(f"image tensor: expected values in [0, 1], found [{low:g}, {high:g}]"
                              + ("; divide 0-255 images by 255" if high > 1.0 else ""))
    hwc = (chw.detach().float().cpu() * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return _rgb(hwc, "image tensor")


def read_rgb(image, channel_order: str = "rgb") -> np.ndarray:
    """A path, PIL image, uint8 array or float tensor in [0, 1] -> H x W x 3 uint8 RGB.

    ``channel_order="bgr"``: the array or tensor holds BGR channels (an OpenCV ``imread`` array); paths
    and PIL images know their own order.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ImageInputError(f"channel_order must be one of {list(CHANNEL_ORDERS)}, got {channel_order!r}")
    if isinstance(image, (str, Path)):
        from segattn.data.errors import DatasetError
        from segattn.data.files import read_image

        if not Path(image).is_file():
            raise ImageInputError(f"{image}: no such image file")
        try:
            return read_image(image)
        except DatasetError as err:
            raise ImageInputError(str(err)) from None
    if hasattr(image, "convert") and hasattr(image, "mode"):  # PIL.Image
        return np.asarray(image.convert("RGB"))
    if isinstance(image, Tensor):
        array = _from_tensor(image)
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageInputError(f"image array: expected dtype uint8 (0..255), found {image.dtype}; "
                                  f"pass floats in [0, 1] as a torch tensor")
        array = _rgb(image, "image array")
    else:
        raise ImageInputError(f"expected a uint8 array, a PIL image, a path or a float tensor, found {type(image).__name__}")
    return np.ascontiguousarray(array[..., ::-1] if channel_order == "bgr" else array)
