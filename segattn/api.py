"""The user-facing entry points: ``segattn.load_model`` and the checkpoint reading it shares with evaluate."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from segattn.models.checkpoint import CheckpointError, build_model, read_checkpoint, resolve_checkpoint
from segattn.models.segmentor import Segmentor


def read_any_checkpoint(path: str | Path) -> dict:
    """A segattn checkpoint dict from a segattn file, or from any file ``segattn-convert`` reads (converted in
    memory; ``ckpt["converted_from"]`` names its format). CheckpointError says what the file is not."""
    path = Path(path).expanduser()
    try:
        return read_checkpoint(path)
    except CheckpointError as not_segattn:
        from segattn.convert import ConversionError, convert_checkpoint

        try:
            return convert_checkpoint(path)[0]
        except ConversionError as err:
            raise CheckpointError(f"{not_segattn}; nor a release segattn-convert reads: {err}") from None


def load_model(path: str | Path, device: Optional[str | torch.device] = None) -> Segmentor:
    """A :class:`Segmentor` in eval mode from a segattn checkpoint (trained, or written by ``segattn-convert``;
    a run folder stands for its best, else last, checkpoint), or from a published file the converter reads
    (mmseg zoo, official CCNet / DANet).

    ``model(x)`` maps an ImageNet-normalised RGB batch ``B x 3 x H x W`` (the data pipeline's images)
    to logits ``B x K x H x W`` resized with the checkpoint's ``align_corners``; ``model.predict(image)``
    takes a plain image. The model carries ``class_names``, ``palette`` (or None), ``normalization``
    and ``align_corners``.
    """
    path = resolve_checkpoint(path)
    model = model_from_checkpoint(read_any_checkpoint(path), path)
    return model.to(device) if device is not None else model


def model_from_checkpoint(ckpt: dict, path: str | Path) -> Segmentor:
    """The checkpoint dict's Segmentor (eval mode, CPU) with its ``class_names`` and ``palette``."""
    model = build_model(ckpt, path)
    model.class_names = list(ckpt["class_names"])
    model.palette = ckpt.get("palette") or _dataset_palette(ckpt)
    return model


def _dataset_palette(ckpt: dict):
    """The palette of the dataset the checkpoint was trained on (None when unknown)."""
    from segattn.models.build import import_class

    try:
        dataset = ckpt["config"]["data"]["dataset"]
        cls = import_class(dataset["_target_"])
        args = {k: v for k, v in dataset.items() if not k.startswith("_")}
        return [list(c) for c in cls.class_info(**args)[1]]
    except (AttributeError, KeyError, TypeError, ValueError):  # no class_info, partial config
        return None
