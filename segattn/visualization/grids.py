"""The two picture grids: attention maps of chosen points, and validation predictions during training."""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import numpy as np

from segattn.constants import IGNORE_INDEX
from segattn.visualization.capture import AttentionRecord
from segattn.visualization.draw import (
    class_legend, greyscale, mark_points, overlay, panel_figure, show_bars, show_heat, show_image,
)
from segattn.visualization.maps import channel_affinities, criss_cross_map, dense_map, feature_cell, upsample_map

NAMES = {"criss_cross": "criss-cross", "position": "DANet position attention", "non_local": "non-local",
         "disentangled_non_local": "disentangled non-local (pairwise)", "channel": "DANet channel attention"}


class Panel(NamedTuple):
    """One panel: a heat map (HxW at image size, ``log`` colour scale or linear) or bars (labels, values)."""

    title: str
    heat: Optional[np.ndarray] = None
    bars: Optional[tuple[list[str], list[float]]] = None
    log: bool = False


def point_panels(records: dict[str, list[AttentionRecord]], point: Sequence[int], image_size: Sequence[int],
                 label: str) -> list[Panel]:
    """The panels of one pixel ``(y, x)`` for every captured block (batch item 0).

    Criss-cross: the map after the first pass (its row and column) and, for R > 1 passes, the
    effective map after all R (log colour scale: off the cross its weights are products of two
    passes' weights, orders of magnitude below those on the cross); position and non-local: the
    point's full map for each call; channel: the strongest channel at the point and the channels
    it attends to most.
    """
    panels = []
    for calls in records.values():
        kind, name = calls[0].kind, NAMES[calls[0].kind]
        cell = feature_cell(point, image_size, calls[0].size)
        if kind == "criss_cross":
            passes = [c.weights[0] for c in calls]
            panels.append(Panel(f"{label}: {name}\npass 1 of {len(passes)} (its row + column)",
                                upsample_map(criss_cross_map(passes[:1], cell), image_size)))
            if len(passes) > 1:
                panels.append(Panel(f"{label}: {name}\neffective after {len(passes)} passes (log scale)",
                                    upsample_map(criss_cross_map(passes, cell), image_size), log=True))
        elif kind == "channel":
            for call in calls:
                channel, indices, values = channel_affinities(call.weights[0], call.features[0], cell)
                panels.append(Panel(f"{label}: {name}\nchannel {channel} (strongest here) attends to",
                                    bars=([f"ch {i}" for i in indices], values)))
        else:
            for call in calls:
                grid = dense_map(call.weights[0], cell, call.size, call.key_size)
                panels.append(Panel(f"{label}: {name}", upsample_map(grid, image_size)))
    return panels


def attention_grid(image: np.ndarray, pred: np.ndarray, palette: Sequence[Sequence[int]], class_names: Sequence[str],
                   records: dict[str, list[AttentionRecord]], points: Sequence[Sequence[int]]):
    """Figure: input with numbered points and the prediction overlay on top, then each point's panels
    (one row per point, or two points per row when a point has a single panel).

    ``image``: HxWx3 uint8 RGB; ``pred``: HxW train ids; ``points``: pixel ``(y, x)`` pairs.
    """
    size = image.shape[:2]
    labels = [str(n + 1) for n in range(len(points))]
    per_point = [point_panels(records, p, size, f"point {label}") for p, label in zip(points, labels)]
    cols = max(2, len(per_point[0]))
    panels = [panel for group in per_point for panel in group]
    fig, axes = panel_figure(1 + math.ceil(len(panels) / cols), cols, size[0] / size[1])
    show_image(axes[0, 0], image, "input and points")
    mark_points(axes[0, 0], points, labels)
    show_image(axes[0, 1], overlay(image, pred, palette), "prediction")
    for ax in axes[0, 2:]:
        ax.set_axis_off()
    for n, ax in enumerate(axes[1:].flat):
        if n >= len(panels):
            ax.set_axis_off()
            continue
        panel = panels[n]
        if panel.heat is None:
            show_bars(ax, *panel.bars, panel.title, "attention weight")
            continue
        show_heat(ax, image, panel.heat, panel.title, panel.log)
        owner = n // len(per_point[0])
        mark_points(ax, [points[owner]], [labels[owner]])
    class_legend(fig, [pred], palette, class_names)
    return fig


def prediction_grid(samples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
                    palette: Sequence[Sequence[int]], class_names: Sequence[str], title: str = ""):
    """Figure with one row per ``(name, image, mask, pred)`` sample: the image, the ground truth and
    the prediction overlaid in the dataset's colours, and the wrong pixels in white (labelled pixels
    only, 255 in ``mask`` is ignored) over the dimmed greyscale image."""
    image = samples[0][1]
    fig, axes = panel_figure(len(samples), 4, image.shape[0] / image.shape[1], width=3.5)
    for row, (name, image, mask, pred) in zip(axes, samples):
        labelled = mask != IGNORE_INDEX
        wrong = labelled & (pred != mask)
        share = 100.0 * wrong.sum() / max(labelled.sum(), 1)
        errors = np.where(wrong, 1.0, 0.4 * greyscale(image))
        show_image(row[0], image, name)
        show_image(row[1], overlay(image, mask, palette), "ground truth")
        show_image(row[2], overlay(image, pred, palette), "prediction")
        row[3].imshow(errors, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        row[3].set_title(f"errors (white): {share:.1f}% of labelled pixels", fontsize=9)
        row[3].set_axis_off()
    if title:
        fig.suptitle(title)
    class_legend(fig, [s[2] for s in samples] + [s[3] for s in samples], palette, class_names)
    return fig
