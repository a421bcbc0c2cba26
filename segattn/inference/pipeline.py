"""A model's test pipeline: the val transform (resize, normalisation) and passes (whole / slide window) its
checkpoint was evaluated with. ``evaluate.py``, ``segattn-predict`` and ``model.predict`` follow it unless
an argument says otherwise."""
from __future__ import annotations

from importlib import import_module
from typing import Callable, Mapping, Optional

import numpy as np
from omegaconf import OmegaConf
from torch import Tensor

from segattn.utils.precision import INFERENCE_PRECISIONS

PASS_DEFAULTS = {"mode": "whole", "crop_size": [769, 769], "stride": [513, 513]}  # for keys no recipe sets


def checkpoint_pipeline(ckpt: Mapping) -> dict:
    """``{"val_transform": data.val_transform kwargs, "eval": {mode, crop_size, stride}, "flip_pairs": [[a, b], ...]}``
    of a segattn checkpoint (``flip_pairs``: its dataset class's FLIP_PAIRS, for the test-time flip)."""
    config = ckpt["config"]
    data = config.get("data") or {}
    val_transform = dict(data.get("val_transform") or {})
    return {"val_transform": val_transform, "eval": dict(config.get("eval") or {}),
            "flip_pairs": dataset_flip_pairs((data.get("dataset") or {}).get("_target_"))}


def dataset_flip_pairs(target: Optional[str]) -> list[list[int]]:
    """FLIP_PAIRS of the segattn dataset class ``target`` names (``segattn.data.lip.LIPDataset``); [] for others."""
    if not isinstance(target, str) or not target.startswith("segattn.data."):
        return []
    module, name = target.rsplit(".", 1)
    return [list(p) for p in getattr(getattr(import_module(module), name, None), "FLIP_PAIRS", ())]


def fill_passes(given: Mapping, recipe: Optional[Mapping]) -> dict:
    """``given``'s ``mode`` / ``crop_size`` / ``stride``, each None filled from ``recipe``, else :data:`PASS_DEFAULTS`."""
    filled = {}
    for key, default in PASS_DEFAULTS.items():
        value = given.get(key)
        if value is None:
            value = (recipe or {}).get(key)
        filled[key] = list(value) if isinstance(value, (list, tuple)) else (value if value is not None else default)
    return filled


def input_transform(val_transform: Optional[Mapping] = None) -> Callable[[np.ndarray], Tensor]:
    """H x W x 3 uint8 RGB -> ``1 x 3 x h x w`` model input through the val transform (ImageNet-normalised;
    resized when the pipeline resizes)."""
    from segattn.data.transforms import build_val_transform

    transform = build_val_transform(**dict(val_transform or {}))
    return lambda image: transform(image=image)["image"][None]


class InferenceSettingError(ValueError):
    """A malformed inference setting (mode, window, scales, precision); the message names the key."""


def _positive_list(value, length: Optional[int] = None) -> bool:
    values = list(value) if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else []
    return len(values) > 0 and (length is None or len(values) == length) and \
        all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)


def check_passes(settings: Mapping, prefix: str = "") -> None:
    """One message for a malformed ``mode`` / ``scales`` / ``precision`` / ``crop_size`` / ``stride`` (keys still None
    are filled later from the recipe); ``prefix`` is how the messages name the keys (``eval.`` in evaluate.py)."""
    mode = settings.get("mode")
    if mode is not None and mode not in ("whole", "slide"):
        raise InferenceSettingError(f"{prefix}mode must be whole or slide, got {mode!r}")
    if not _positive_list(settings.get("scales")):
        raise InferenceSettingError(f"{prefix}scales must be a non-empty list of positive numbers, e.g. [0.75,1.0,1.25]; "
                                    f"got {settings.get('scales')}")
    if settings.get("precision") not in INFERENCE_PRECISIONS:
        raise InferenceSettingError(f"{prefix}precision must be one of {list(INFERENCE_PRECISIONS)}, "
                                    f"got {settings.get('precision')!r}")
    crop_size, stride = settings.get("crop_size"), settings.get("stride")
    for key, value in (("crop_size", crop_size), ("stride", stride)):
        if mode == "slide" and value is not None and not _positive_list(value, 2):
            raise InferenceSettingError(f"{prefix}{key} must be two positive integers [h,w], e.g. [769,769]; got {value}")
    if mode == "slide" and None not in (stride, crop_size) and any(s > c for s, c in zip(stride, crop_size)):
        raise InferenceSettingError(f"{prefix}stride must not exceed {prefix}crop_size (windows would leave pixels "
                                    f"unseen): got stride {list(stride)} with crop_size {list(crop_size)}")


def predictor_passes(settings: Mapping) -> dict:
    """The filled settings as :class:`segattn.inference.predictor.Predictor` arguments."""
    return dict(precision=settings["precision"], mode=settings["mode"], crop_size=list(settings["crop_size"]),
                stride=list(settings["stride"]), scales=list(settings["scales"]), flip=bool(settings["flip"]))
