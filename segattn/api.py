"""The user-facing entry point ``segattn.load_model``: any checkpoint file or run folder -> a ready Segmentor."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from segattn.checkpoints import resolve_checkpoint, stored_target
from segattn.models.checkpoint import build_model
from segattn.models.segmentor import Segmentor


def load_model(path: str | Path, device: Optional[str | torch.device] = None) -> Segmentor:
    """A :class:`Segmentor` in eval mode from a segattn checkpoint (trained, or written by ``segattn-convert``;
    a run folder stands for its best, else last, checkpoint), or from a published file the converter reads
    (mmseg zoo, official CCNet / DANet). Files are read safely: nothing in them runs.

    ``model(x)`` maps an ImageNet-normalised RGB batch ``B x 3 x H x W`` (the data pipeline's images)
    to logits ``B x K x H x W`` resized with the checkpoint's ``align_corners``; ``model.predict(image)``
    takes a plain image through the checkpoint's test pipeline. The model carries ``class_names``,
    ``palette`` (or None), ``normalization``, ``align_corners`` and ``test_pipeline``.
    """
    from segattn.convert import read_any

    path = resolve_checkpoint(path)
    model = model_from_checkpoint(read_any(path), path)
    return model.to(device) if device is not None else model


def model_from_checkpoint(ckpt: dict, path: str | Path) -> Segmentor:
    """The checkpoint dict's Segmentor (eval mode, CPU) with its ``class_names``, ``palette`` and ``test_pipeline``."""
    from segattn.inference.pipeline import checkpoint_pipeline

    model = build_model(ckpt, path)
    model.class_names = list(ckpt["class_names"])
    model.palette = ckpt.get("palette") or _dataset_palette(ckpt, path)
    model.test_pipeline = checkpoint_pipeline(ckpt)
    return model


def _dataset_palette(ckpt: dict, path: str | Path):
    """The palette of the dataset the checkpoint was trained on (None when unknown)."""
    dataset = ((ckpt["config"].get("data") or {}).get("dataset")) or {}
    if "_target_" not in dataset:
        return None
    cls = stored_target(dataset["_target_"], str(path))  # a class of segattn's own, else refused
    try:
        args = {k: v for k, v in dataset.items() if not k.startswith("_")}
        return [list(c) for c in cls.class_info(**args)[1]]
    except (AttributeError, KeyError, TypeError, ValueError):  # no class_info, partial config
        return None
