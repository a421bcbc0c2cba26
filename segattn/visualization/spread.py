"""A figure of repeated runs: every run as a point, each group's mean ± std as a bar with whiskers."""
from __future__ import annotations

import os
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np

from segattn.evaluation.spread import Spread
from segattn.visualization.draw import RUN_COLOURS, figure_png, save_png


def plot_spread(ax, groups: Mapping[str, Spread], ylabel: str) -> None:
    """On ``ax``: per group a light bar at the mean, whiskers at ± std and a dot per run (value labels)."""
    for n, (name, group) in enumerate(groups.items()):
        colour = RUN_COLOURS[n % len(RUN_COLOURS)]
        ax.bar(n, group.mean, width=0.6, color=colour, alpha=0.35, edgecolor="black", linewidth=0.5)
        if group.std is not None:
            ax.errorbar(n, group.mean, yerr=group.std, color="black", capsize=5, linewidth=1.2)
        offsets = np.linspace(-0.18, 0.18, len(group.values)) if len(group.values) > 1 else [0.0]
        ax.scatter(n + np.asarray(offsets), group.values, color=colour, edgecolor="black", zorder=3, s=28)
    ax.set_xticks(range(len(groups)), [f"{name}\n{group.text()}" for name, group in groups.items()], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def save_spread_figure(groups: Mapping[str, Spread], ylabel: str, title: str, out_path: str | os.PathLike) -> None:
    """``plot_spread`` alone in a PNG at ``out_path`` (written atomically)."""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(groups) + 1.5), 3.8), layout="constrained")
    plot_spread(ax, groups, ylabel)
    ax.set_title(title, fontsize=10)
    save_png(out_path, figure_png(fig))
