#!/usr/bin/env python
"""Attention maps of a trained model at chosen points of one image, drawn as one PNG grid.

    python scripts/visualize_attention.py ckpt=<file.ckpt | run folder> image=<path> points=[[y,x],...]
        [out=<file.png>] [device=auto|cpu|cuda]

The model is rebuilt from the checkpoint as evaluate.py does (run folder: best.ckpt, else last.ckpt)
and runs once on the whole image (the checkpoint's val transform); forward hooks take the weights
of its attention blocks from that pass. ``points`` are pixel (row, column) pairs of the image
(default: its centre). The grid shows the input with the numbered points, the prediction, and per
point: criss-cross, the map after one pass (the point's row and column) and the effective map
after the R passes; non-local and DANet position attention, the point's full map; DANet channel
attention, the channels that the strongest channel at the point attends to most.
Position and non-local blocks form their (hw)^2 map here: on big images, pass a smaller copy.
``out`` defaults to ``<run folder>/attention/<image name>.png``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from segattn.convert import read_any
from segattn.evaluation.settings import EvaluationError
from segattn.checkpoints import resolve_checkpoint
from segattn.models.checkpoint import build_model
from segattn.utils.device import resolve_device
from segattn.data.errors import DatasetError
from segattn.data.files import read_image
from segattn.data.transforms import build_val_transform
from segattn.visualization.capture import capture_attention
from segattn.visualization.draw import figure_path, figure_png, save_png
from segattn.visualization.grids import attention_grid
from segattn.visualization.points import check_points, parse_key_values

DEFAULTS = {"ckpt": None, "image": None, "points": None, "out": None, "device": "auto"}


def parse_args(argv: Sequence[str]) -> dict:
    """``key=value`` arguments (values in YAML: ``points=[[10,20],[30,40]]``) over :data:`DEFAULTS`."""
    return parse_key_values(argv, DEFAULTS, required=("ckpt", "image"))


def visualize(args: dict) -> Path:
    """Write the attention grid of ``args`` (see :func:`parse_args`); return its path."""
    ckpt_path = resolve_checkpoint(str(args["ckpt"]))
    ckpt = read_any(ckpt_path)
    model = build_model(ckpt, ckpt_path)
    datamodule = instantiate(ckpt["config"]["data"])
    image_path = Path(args["image"]).expanduser()
    image = read_image(image_path)
    points = check_points(args["points"], image.shape[:2])
    transform = build_val_transform(**datamodule.val_transform_kwargs)
    x = transform(image=image, mask=np.zeros(image.shape[:2], np.uint8))["image"]
    device = resolve_device(str(args["device"]))
    model.to(device)
    with capture_attention(model.head) as records, torch.no_grad():
        logits = model(x[None].to(device))
    logits = F.interpolate(logits, size=image.shape[:2], mode="bilinear", align_corners=model.align_corners)
    pred = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
    fig = attention_grid(image, pred, datamodule.palette, ckpt["class_names"], records, points)
    out = figure_path(ckpt_path, "attention", image_path, args["out"])
    save_png(out, figure_png(fig))
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return
    try:
        out = visualize(parse_args(argv))
    except (EvaluationError, DatasetError, ValueError) as err:
        raise SystemExit(f"visualize_attention.py: error: {err}") from None
    print(f"Attention maps written to {out}")


if __name__ == "__main__":
    main()
