"""Drawing primitives (matplotlib, Agg backend) for the attention, validation and comparison figures.

Colour-blind-friendly choices: heat maps in viridis over a greyscale copy of the image (the only
colours come from the map), points marked by numbered white-and-black circles, class colours
always named in a legend, run colours from the Okabe-Ito palette with a hatch per run.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.patheffects as path_effects  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from PIL import Image  # noqa: E402

from segattn.utils.io import atomic_path  # noqa: E402

HEAT_CMAP = "viridis"
RUN_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
RUN_HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
_OUTLINE = [path_effects.withStroke(linewidth=2.5, foreground="black")]


def overlay(image: np.ndarray, ids: np.ndarray, palette: Sequence[Sequence[int]], alpha: float = 0.5) -> np.ndarray:
    """HxWx3 uint8 RGB blended with the class colours of HxW ``ids``; ids without a colour (255) keep the image."""
    colours = np.zeros((256, 3), dtype=np.float32)
    colours[: len(palette)] = palette
    known = (ids < len(palette))[..., None]
    blend = (1 - alpha) * image.astype(np.float32) + alpha * colours[ids]
    return np.where(known, blend, image).round().clip(0, 255).astype(np.uint8)


def greyscale(image: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> HxW luminance in [0, 1]."""
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


def show_image(ax, image: np.ndarray, title: str) -> None:
    ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def show_heat(ax, image: np.ndarray, heat: np.ndarray, title: str, log: bool = False) -> None:
    """``heat`` (HxW, the image's size) in viridis over the greyscale image, with a colour bar: linear
    from 0, or ``log`` over the three decades below the maximum (smaller values get the lowest colour)."""
    ax.imshow(greyscale(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    top = float(heat.max()) if heat.max() > 0 else 1.0
    norm = LogNorm(top * 1e-3, top, clip=True) if log else Normalize(0.0, top)
    shown = ax.imshow(heat, cmap=HEAT_CMAP, norm=norm, alpha=0.8, interpolation="nearest")
    colourbar = ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
    colourbar.ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def show_bars(ax, labels: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> None:
    """Horizontal bars, largest on top, one colour (the bar lengths carry the information)."""
    ax.barh(range(len(values)), values, color=plt.get_cmap(HEAT_CMAP)(0.35), edgecolor="black", linewidth=0.5)
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(title, fontsize=9)


def mark_points(ax, points: Iterable[Sequence[int]], labels: Iterable[str]) -> None:
    """Numbered markers at pixel ``(y, x)`` positions: white circle, black edge, outlined white label."""
    for (y, x), label in zip(points, labels):
        ax.plot(x, y, marker="o", markersize=8, markerfacecolor="white", markeredgecolor="black", markeredgewidth=1.5)
        ax.annotate(label, (x, y), xytext=(6, 6), textcoords="offset points", color="white", fontsize=10,
                    fontweight="bold", path_effects=_OUTLINE)


def class_legend(fig, id_maps: Iterable[np.ndarray], palette: Sequence[Sequence[int]], names: Sequence[str]) -> None:
    """Figure legend (below the panels) naming the colour of every class present in ``id_maps``."""
    present = sorted(set().union(*(np.unique(ids).tolist() for ids in id_maps)) & set(range(len(names))))
    handles = [Patch(facecolor=np.asarray(palette[k]) / 255, edgecolor="black", label=names[k]) for k in present]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(6, len(handles)), fontsize=8, frameon=False)


def panel_figure(rows: int, cols: int, aspect: float, width: float = 4.0):
    """A constrained-layout figure of ``rows x cols`` panels of ``width`` inches and height/width ``aspect``."""
    height = max(1.5, width * aspect) + 0.5
    return plt.subplots(rows, cols, figsize=(cols * width, rows * height), layout="constrained", squeeze=False)


def figure_png(fig, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (tight bounding box); closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def png_array(data: bytes) -> np.ndarray:
    """PNG bytes -> HxWx3 uint8 RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def figure_path(ckpt_path: Path, folder: str, image_path: Path, out: Optional[str] = None) -> Path:
    """``out`` when given, else ``<run>/<folder>/<image stem>.png`` in the run folder of ``ckpt_path``."""
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    return Path(out).expanduser() if out else run / folder / f"{image_path.stem}.png"


def save_png(path: str | os.PathLike, data: bytes) -> None:
    """Write PNG bytes atomically (temporary file + rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
