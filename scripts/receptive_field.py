#!/usr/bin/env python
"""How far each trained head looks: |d out_u / d input| at chosen points, and reach against distance.

    python scripts/receptive_field.py ckpt=<file.ckpt | run folder> image=<path> points=[[y,x],...]
    python scripts/receptive_field.py ckpt=[outputs/context/fcn/seed_0,outputs/context/ccnet_r2/seed_0] \\
        image=data/synthetic/context/images/val/0000.png points=[[8,400]] [out=<file.png>] [device=cpu]

Every checkpoint's model is rebuilt as evaluate.py does and runs on the image (its val transform);
for every point the gradient of the sum of its logits with respect to the input pixels is drawn
(log scale, the three decades below the maximum), and one panel holds, per checkpoint and point, the
share of that gradient beyond each distance (``segattn.diagnostics.receptive_field``). A val transform
that resizes the image (e.g. the Cityscapes recipes') is followed: points are given in the original
image and drawn, with the gradients, at the size the model sees. Beyond a local
head's receptive field the share is exactly 0 (the test in ``tests/test_context.py``). ``points``:
pixel (row, column) pairs (default: the centre). ``out`` defaults to
``<first run folder>/receptive_field/<image name>.png``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
from hydra.utils import instantiate

from segattn.convert import read_any
from segattn.data.errors import DatasetError
from segattn.data.files import read_image
from segattn.data.transforms import build_val_transform
from segattn.diagnostics.receptive_field import input_gradients, reach_curve
from segattn.evaluation.settings import EvaluationError
from segattn.checkpoints import resolve_checkpoint
from segattn.models.checkpoint import build_model
from segattn.utils.device import resolve_device
from segattn.visualization.draw import (RUN_COLOURS, figure_path, figure_png, mark_points, panel_figure, save_png, show_heat,
                                       show_image)
from segattn.visualization.points import check_points, parse_key_values

DEFAULTS = {"ckpt": None, "image": None, "points": None, "out": None, "device": "auto"}


def describe(ckpt: dict, path: Path) -> str:
    """``"ccnet (R=2), seed_0"``: the head of a checkpoint and its run folder's name."""
    head = ckpt["config"]["head"]
    name = str(head.get("_target_", "model")).rsplit(".", 1)[-1].replace("Head", "").lower()
    extra = f" (R={head['recurrence']})" if "recurrence" in head else ""
    run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return f"{name}{extra}, {run.name}"


def model_view(image: np.ndarray, points: list[tuple[int, int]], size: tuple[int, int]):
    """The image and the points at ``size`` (H, W), the size the model's val transform gives it."""
    if size == image.shape[:2]:
        return image, points
    scale_y, scale_x = size[0] / image.shape[0], size[1] / image.shape[1]
    resized = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return resized, [(min(int(y * scale_y), size[0] - 1), min(int(x * scale_x), size[1] - 1)) for y, x in points]


def draw(args: dict) -> Path:
    """Write the figure for ``args`` (see :data:`DEFAULTS`); return its path."""
    paths = [resolve_checkpoint(str(c)) for c in (args["ckpt"] if isinstance(args["ckpt"], list) else [args["ckpt"]])]
    image_path = Path(args["image"]).expanduser()
    image = read_image(image_path)
    points = check_points(args["points"], image.shape[:2])
    device = resolve_device(str(args["device"]))
    distances = np.arange(0, int(np.hypot(*image.shape[:2])) + 1)  # the longest distance in the image (px)
    aspect = image.shape[0] / image.shape[1]
    fig, axes = panel_figure(len(paths) + 1, len(points) + 1, aspect=max(0.15, aspect), width=4.2 if aspect > 0.25 else 8.0)
    curve_ax = axes[-1, 0]
    for row, path in enumerate(paths):
        ckpt = read_any(path)
        model = build_model(ckpt, path).to(device)
        datamodule = instantiate(ckpt["config"]["data"])
        x = build_val_transform(**datamodule.val_transform_kwargs)(image=image, mask=np.zeros(image.shape[:2], np.uint8))["image"]
        shown, at = model_view(image, points, tuple(x.shape[-2:]))
        gradients = input_gradients(model, x.to(device), at)
        label = describe(ckpt, path)
        show_image(axes[row, 0], shown, label)
        mark_points(axes[row, 0], at, [str(n + 1) for n in range(len(points))])
        for n, (point, gradient) in enumerate(zip(at, gradients)):
            show_heat(axes[row, n + 1], shown, gradient, f"{label}: |d out / d input| at {n + 1}", log=True)
            mark_points(axes[row, n + 1], [point], [str(n + 1)])
            curve_ax.plot(distances, reach_curve(gradient, point, distances), color=RUN_COLOURS[row % len(RUN_COLOURS)],
                          linestyle=("-", "--", ":", "-.")[n % 4], label=f"{label}, point {n + 1}")
    curve_ax.set(xlabel="distance from the point (px)", ylabel="share of |gradient| beyond", yscale="log",
                 ylim=(1e-6, 1.5), title="reach against distance (a curve ends where the share is exactly 0)")
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(fontsize=7)
    for ax in axes[-1, 1:]:
        ax.set_axis_off()
    out = figure_path(paths[0], "receptive_field", image_path, args["out"])
    save_png(out, figure_png(fig))
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return
    try:
        out = draw(parse_key_values(argv, DEFAULTS, required=("ckpt", "image")))
    except (EvaluationError, DatasetError, ValueError) as err:
        raise SystemExit(f"receptive_field.py: error: {err}") from None
    print(f"Receptive field written to {out}")


if __name__ == "__main__":
    main()
