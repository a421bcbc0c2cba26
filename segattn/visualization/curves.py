"""``curves.png``: train loss, val mIoU, learning rate and attention diagnostics against step, from
Lightning's CSV log."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from segattn.visualization.draw import RUN_COLOURS, figure_png, save_png

LINE_STYLES = ("-", "--", ":", "-.")


def read_series(csv_path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every column of a Lightning ``metrics.csv`` as ``(steps, values)`` over the rows where it is set."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    series: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in ("step", "epoch") and value not in ("", None):
                steps, values = series.setdefault(key, ([], []))
                steps.append(int(float(row["step"])))
                values.append(float(value))
    return {key: (np.asarray(s), np.asarray(v)) for key, (s, v) in series.items()}


def attention_columns(series: dict, statistic: str) -> list[str]:
    """The ``attention/<block>/<statistic>`` columns of a log, sorted."""
    return sorted(key for key in series if key.startswith("attention/") and key.endswith(f"/{statistic}"))


def plot_lines(ax, series: dict, keys: list[str], ylabel: str, marker: str = "") -> None:
    """One line per column of ``keys`` (colour and line style per column), legend by block name."""
    for n, key in enumerate(keys):
        steps, values = series[key]
        ax.plot(steps, values, color=RUN_COLOURS[n % len(RUN_COLOURS)], linestyle=LINE_STYLES[n % len(LINE_STYLES)],
                marker=marker, label=key.split("/")[1] if key.startswith("attention/") else key)
    if keys:
        ax.legend(fontsize=7)
    ax.set_ylabel(ylabel)


def plot_training_curves(csv_path: str | os.PathLike, out_path: str | os.PathLike) -> None:
    """Stacked panels sharing the step axis: ``train/loss`` (with a moving average once there are 20
    points), ``val/mIoU`` and every ``lr-*`` column (one line style per parameter group); when the log
    has attention diagnostics, also the gate of every attention block and its mean attended distance
    (:class:`~segattn.callbacks.attention_diagnostics.AttentionDiagnostics`). Raises ValueError if the
    log has none of the first three."""
    series = read_series(csv_path)
    lrs = sorted(key for key in series if key.startswith("lr-") and "momentum" not in key)
    if not any(key in series for key in ("train/loss", "val/mIoU")) and not lrs:
        raise ValueError(f"{csv_path}: no train/loss, val/mIoU or lr-* column to plot (found {sorted(series)})")
    gates, distances = attention_columns(series, "gate"), attention_columns(series, "distance_px")
    rows = 3 + bool(gates) + bool(distances)
    fig, axes = plt.subplots(rows, 1, figsize=(7, 2.5 * rows), sharex=True, layout="constrained")
    loss_ax, miou_ax, lr_ax = axes[:3]
    if gates:
        plot_lines(axes[3], series, gates, "attention gate")
        axes[3].axhline(0.0, color="black", linewidth=0.8)
    if distances:
        plot_lines(axes[-1], series, distances, "attended distance (px)", marker="o")
    if "train/loss" in series:
        steps, loss = series["train/loss"]
        loss_ax.plot(steps, loss, color=RUN_COLOURS[0], alpha=0.45 if len(loss) >= 20 else 1.0, label="train loss")
        if len(loss) >= 20:
            window = max(2, len(loss) // 20)
            smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
            loss_ax.plot(steps[window - 1:], smooth, color="black", label=f"moving average ({window} logs)")
        loss_ax.legend(fontsize=8)
    loss_ax.set_ylabel("train loss")
    if "val/mIoU" in series:
        steps, miou = series["val/mIoU"]
        best = int(np.argmax(miou))
        miou_ax.plot(steps, miou, color=RUN_COLOURS[2], marker="o", label="val mIoU")
        miou_ax.axhline(miou[best], color="black", linestyle=":", linewidth=1,
                        label=f"best {miou[best]:.2f} (step {steps[best]})")
        miou_ax.legend(fontsize=8)
    miou_ax.set_ylabel("val mIoU (%)")
    plot_lines(lr_ax, series, lrs, "learning rate")
    axes[-1].set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
        if not ax.has_data():
            ax.text(0.5, 0.5, "not in the log", transform=ax.transAxes, ha="center", va="center", color="0.4")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    run = Path(csv_path).resolve().parent.parent  # <run>/logs/metrics.csv
    fig.suptitle(f"{run.parent.name}/{run.name}", fontsize=10)
    save_png(out_path, figure_png(fig))
