"""What ``predict`` accepts (uint8 RGB array, PIL image, path, float tensor) as the model's input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from segattn.constants import IMAGENET_MEAN, IMAGENET_STD


class ImageInputError(ValueError):
    """An image ``predict`` cannot read (the message says what was expected and what was found)."""


def _rgb(array: np.ndarray, what: str) -> np.ndarray:
    """H x W, H x W x 1 (grey: repeated) or H x W x 4 (alpha: dropped) -> H x W x 3."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageInputError(f"{what}: expected an H x W x 3 RGB image (1 or 4 channels are converted), "
                              f"found shape {tuple(array.shape)}")
    return np.repeat(array, 3, -1) if array.shape[-1] == 1 else array[..., :3]


def read_rgb(image) -> np.ndarray:
    """A path, PIL image or uint8 array -> H x W x 3 uint8 RGB."""
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
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ImageInputError(f"image array: expected dtype uint8 (0..255), found {image.dtype}; "
                                  f"pass floats in [0, 1] as a torch tensor")
        return np.ascontiguousarray(_rgb(image, "image array"))
    raise ImageInputError(f"expected a uint8 RGB array, a PIL image, a path or a float tensor, found {type(image).__name__}")


def to_input(image) -> Tensor:
    """Any accepted image -> ``1 x 3 x H x W`` float32, ImageNet-normalised RGB (what the models take).

    A float tensor is ``3 x H x W`` or ``1 x 3 x H x W`` RGB in [0, 1] (1 or 4 channels are converted).
    """
    if isinstance(image, Tensor):
        if not image.is_floating_point() or image.dim() not in (3, 4) or (image.dim() == 4 and image.shape[0] != 1):
            raise ImageInputError(f"image tensor: expected float 3 x H x W or 1 x 3 x H x W in [0, 1], "
                                  f"found {image.dtype} of shape {tuple(image.shape)}")
        chw = image[0] if image.dim() == 4 else image
        if chw.shape[0] not in (1, 3, 4):
            raise ImageInputError(f"image tensor: expected 3 channels (1 or 4 are converted), found shape {tuple(image.shape)}")
        x = (chw.expand(3, -1, -1) if chw.shape[0] == 1 else chw[:3]).float()[None]
    else:
        x = torch.from_numpy(read_rgb(image)).permute(2, 0, 1).float()[None] / 255.0
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
