"""The user-facing entry points: ``segattn.load_model``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from segattn.models.checkpoint import build_model, read_checkpoint
from segattn.models.segmentor import Segmentor


def load_model(path: str | Path, device: Optional[str | torch.device] = None) -> Segmentor:
    """A :class:`Segmentor` in eval mode from a segattn checkpoint (trained, or written by ``segattn-convert``).

    ``model(x)`` maps an ImageNet-normalised RGB batch ``B x 3 x H x W`` (the data pipeline's images)
    to logits ``B x K x H x W`` resized with the checkpoint's ``align_corners``. The model carries
    ``class_names``, ``palette`` (or None) and ``align_corners``.
    """
    path = Path(path).expanduser()
    ckpt = read_checkpoint(path)
    model = build_model(ckpt, path)
    model.class_names = list(ckpt["class_names"])
    model.palette = ckpt.get("palette") or _dataset_palette(ckpt)
    return model.to(device) if device is not None else model


def _dataset_palette(ckpt: dict):
    """The palette of the dataset the checkpoint was trained on (None when unknown)."""
    try:
        from hydra.utils import get_class

        dataset = ckpt["config"]["data"]["dataset"]
        cls = get_class(dataset["_target_"])
        args = {k: v for k, v in dataset.items() if not k.startswith("_")}
        return [list(c) for c in cls.class_info(**args)[1]]
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):  # no class_info, partial config
        return None
