"""Compare run folders: a markdown table (head, backbone, steps, mIoU, aAcc, mAcc, time, peak memory)
and a per-class IoU chart with the runs side by side.

A run folder is what ``train.py`` writes: ``metrics.json`` (required), ``.hydra/config.yaml`` and
``.hydra/hydra.yaml`` (head and backbone), ``tb/`` (TensorBoard events: their wall-clock times give
the training time, first to last logged value). Peak memory is read from ``metrics.json`` key
``peak_memory_mib`` when a run records it, and is ``n/a`` otherwise.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from omegaconf import OmegaConf

from segattn.utils.io import write_text
from segattn.visualization.draw import RUN_COLOURS, RUN_HATCHES, figure_png, save_png


@dataclass
class RunSummary:
    """What one run folder says about itself; ``None`` where it does not record a value."""

    label: str
    head: str
    backbone: str
    steps: Optional[int]
    metrics: dict
    seconds: Optional[float]
    peak_memory_mib: Optional[float]


def _describe(config: dict, choices: dict) -> tuple[str, str]:
    """(head, backbone) names: the config group chosen, plus the settings that tell variants apart."""
    head_cfg, backbone_cfg = config.get("head", {}), config.get("backbone", {})
    head = choices.get("head") or str(head_cfg.get("_target_", "n/a")).rsplit(".", 1)[-1]
    extras = [f"R={head_cfg['recurrence']}"] if "recurrence" in head_cfg else []
    extras += [str(head_cfg["mode"])] if "mode" in head_cfg else []
    backbone = choices.get("backbone") or (f"resnet{backbone_cfg['depth']}" if "depth" in backbone_cfg else "n/a")
    if backbone_cfg.get("output_stride"):
        backbone += f" OS{backbone_cfg['output_stride']}"
    if backbone_cfg.get("attention"):
        backbone += f" +{backbone_cfg['attention']}"
    return head + (f" ({', '.join(extras)})" if extras else ""), backbone


def _training_seconds(tb_dir: Path) -> Optional[float]:
    """Last minus first wall-clock time of the scalars in the TensorBoard event files, or None."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    times = []
    for events in sorted(tb_dir.glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        times += [e.wall_time for tag in accumulator.Tags()["scalars"] for e in accumulator.Scalars(tag)]
    return max(times) - min(times) if len(times) > 1 else None


def _yaml(path: Path) -> dict:
    """A saved Hydra YAML file as a dict (interpolations left as written), ``{}`` if absent."""
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else {}


def load_run(folder: str | os.PathLike) -> RunSummary:
    """Summary of a run folder; raises ValueError naming the folder if it has no ``metrics.json``."""
    folder = Path(folder).expanduser()
    metrics_path = folder / "metrics.json"
    if not metrics_path.is_file():
        raise ValueError(f"{folder}: no metrics.json (expected a training run folder with at least one validation)")
    metrics = json.loads(metrics_path.read_text())
    hydra = _yaml(folder / ".hydra" / "hydra.yaml").get("hydra", {})
    head, backbone = _describe(_yaml(folder / ".hydra" / "config.yaml"), hydra.get("runtime", {}).get("choices", {}))
    seconds = _training_seconds(folder / "tb") if (folder / "tb").is_dir() else None
    label = f"{folder.resolve().parent.name}/{folder.resolve().name}"
    return RunSummary(label, head, backbone, metrics.get("step"), metrics, seconds, metrics.get("peak_memory_mib"))


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def markdown_table(runs: Sequence[RunSummary]) -> str:
    """One row per run, metrics in percent."""
    lines = ["| run | head | backbone | steps | mIoU | aAcc | mAcc | time | peak memory |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        memory = "n/a" if run.peak_memory_mib is None else f"{run.peak_memory_mib:.0f} MiB"
        lines.append(f"| {run.label} | {run.head} | {run.backbone} | {run.steps if run.steps is not None else 'n/a'} | "
                     f"{_number(run.metrics.get('mIoU'))} | {_number(run.metrics.get('aAcc'))} | "
                     f"{_number(run.metrics.get('mAcc'))} | {_duration(run.seconds)} | {memory} |")
    return "\n".join(lines) + "\n"


def plot_per_class(runs: Sequence[RunSummary], out_path: str | os.PathLike) -> None:
    """Grouped horizontal bars: per class, one bar per run (Okabe-Ito colour and a hatch per run);
    classes a run leaves undefined get no bar and an 'n/a' mark."""
    classes = list(dict.fromkeys(name for run in runs for name in run.metrics.get("per_class", {})))
    k, r = len(classes), len(runs)
    height = 0.8 / r
    fig, ax = plt.subplots(figsize=(8, min(60.0, max(3.0, k * (0.2 + 0.16 * r)))), layout="constrained")
    for n, run in enumerate(runs):
        per_class = run.metrics.get("per_class", {})
        values = [(per_class.get(name) or {}).get("IoU") for name in classes]
        y = np.arange(k) - 0.4 + height * (n + 0.5)
        ax.barh(y, [v or 0.0 for v in values], height, color=RUN_COLOURS[n % len(RUN_COLOURS)],
                hatch=RUN_HATCHES[n % len(RUN_HATCHES)], edgecolor="black", linewidth=0.4,
                label=f"{run.label} (mIoU {_number(run.metrics.get('mIoU'))})")
        for yy, value in zip(y, values):
            if value is None:
                ax.text(0.5, yy, "n/a", va="center", fontsize=6)
    ax.set_yticks(range(k), classes, fontsize=max(5.0, min(9.0, 300.0 / max(k, 1))))
    ax.set_ylim(k - 0.5, -0.5)  # first class on top, no empty margin
    ax.set_xlim(0, 100)
    ax.set_xlabel("IoU (%)")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside upper center", fontsize=8)
    save_png(out_path, figure_png(fig))


def compare_runs(folders: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> str:
    """Write ``comparison.md`` and ``per_class_iou.png`` into ``out_dir``; return the markdown."""
    runs = [load_run(folder) for folder in folders]
    out = Path(out_dir)
    plot_per_class(runs, out / "per_class_iou.png")
    text = "\n".join([
        "# Run comparison", "", markdown_table(runs),
        "Metrics in percent from each run's `metrics.json` (its last validation, at `steps`). Time: first to last "
        "value logged to TensorBoard (`tb/`). Peak memory: `n/a` where the run does not record it.", "",
        "![per-class IoU](per_class_iou.png)", "",
    ])
    write_text(out / "comparison.md", text)
    return text


GROUP_METRICS = ("mIoU", "aAcc", "mAcc")


def compare_groups(groups: dict[str, Sequence[str | os.PathLike]], out_dir: str | os.PathLike) -> str:
    """Groups of repeated runs (e.g. one head at several seeds): write ``groups.md`` (per group mean ± std
    of mIoU, aAcc and mAcc, every run's mIoU, and which groups' mIoU intervals overlap) and
    ``groups_miou.png`` (every run a point) into ``out_dir``; return the markdown."""
    from segattn.evaluation.spread import overlap_sentences, spread
    from segattn.visualization.spread import save_spread_figure

    runs = {name: [load_run(folder) for folder in folders] for name, folders in groups.items()}
    stats = {key: {name: spread([run.metrics[key] for run in group]) for name, group in runs.items()}
             for key in GROUP_METRICS}
    lines = ["# Run groups", "", "| group | runs | " + " | ".join(GROUP_METRICS) + " | mIoU per run |",
             "|---|---:|" + "---:|" * len(GROUP_METRICS) + "---|"]
    for name, group in runs.items():
        cells = " | ".join(stats[key][name].text(2) for key in GROUP_METRICS)
        lines.append(f"| {name} | {len(group)} | {cells} | {' / '.join(f'{v:.2f}' for v in stats['mIoU'][name].values)} |")
    sentences = overlap_sentences(stats["mIoU"], "mIoU")
    lines += ["", "Mean ± sample standard deviation over each group's runs (percent).", ""]
    lines += [f"- {s}." for s in sentences] or ["- No two groups' mIoU intervals overlap."]
    lines += ["", "![mIoU of every run](groups_miou.png)", ""]
    save_spread_figure(stats["mIoU"], "mIoU (%)", "mIoU of every run, mean ± std per group", Path(out_dir) / "groups_miou.png")
    text = "\n".join(lines)
    write_text(Path(out_dir) / "groups.md", text)
    return text
