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
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from segattn.api import read_any_checkpoint
from segattn.evaluation.settings import EvaluationError
from segattn.models.checkpoint import build_model, resolve_checkpoint
from segattn.utils.device import resolve_device
from segattn.data.errors import DatasetError
from segattn.data.files import read_image
from segattn.data.transforms import build_val_transform
from segattn.visualization.capture import capture_attention
from segattn.visualization.draw import figure_png, save_png
from segattn.visualization.grids import attention_grid

DEFAULTS = {"ckpt": None, "image": None, "points": None, "out": None, "device": "auto"}


def parse_args(argv: Sequence[str]) -> dict:
    """``key=value`` arguments (values in YAML: ``points=[[10,20],[30,40]]``) over :data:`DEFAULTS`."""
    wrong = [arg for arg in argv if "=" not in arg or arg.split("=", 1)[0] not in DEFAULTS]
    if wrong:
        raise EvaluationError(f"unknown argument(s) {wrong}: expected key=value with keys {sorted(DEFAULTS)}")
    try:
        args = {**DEFAULTS, **OmegaConf.to_container(OmegaConf.from_dotlist(list(argv)))}
    except OmegaConfBaseException as err:
        raise EvaluationError(f"cannot parse the arguments {list(argv)}: {err}") from None
    missing = [key for key in ("ckpt", "image") if args[key] is None]
    if missing:
        raise EvaluationError(f"missing {', '.join(f'{key}=...' for key in missing)} (see --help)")
    return args


def check_points(points, size: tuple[int, int]) -> list[tuple[int, int]]:
    """``None`` (the centre) or a list of ``[y, x]`` integer pixel pairs inside the ``size`` image."""
    if points is None:
        return [(size[0] // 2, size[1] // 2)]
    pairs = points if isinstance(points, list) else None
    if not pairs or not all(isinstance(p, list) and len(p) == 2 and all(type(v) is int for v in p) for p in pairs):
        raise EvaluationError(f"points must be a list of [y, x] integer pairs, e.g. points=[[64,128],[10,20]]; got {points}")
    outside = [p for p in pairs if not (0 <= p[0] < size[0] and 0 <= p[1] < size[1])]
    if outside:
        raise EvaluationError(f"points {outside} lie outside the image ({size[0]} rows x {size[1]} columns, [y, x] from 0)")
    return [tuple(p) for p in pairs]


def visualize(args: dict) -> Path:
    """Write the attention grid of ``args`` (see :func:`parse_args`); return its path."""
    ckpt_path = resolve_checkpoint(str(args["ckpt"]))
    ckpt = read_any_checkpoint(ckpt_path)
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
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    out = Path(args["out"]).expanduser() if args["out"] else run / "attention" / f"{image_path.stem}.png"
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
