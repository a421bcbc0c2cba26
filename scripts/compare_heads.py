"""Train every head on the context task (conf/data/context.yaml) with one recipe and compare them.

Each head is trained by the real entry point, ``python train.py data=context head=<head> ...``, in its
own run folder under ``--runs``; the table gets the last validation (``metrics.json``): mIoU over all
classes, mIoU over the four colour classes (the ones decided by the far marker), the training wall
time, and the peak tensor memory of one training step of the same model and batch
(``segattn.utils.profiling.peak_memory_bytes``).

    python scripts/compare_heads.py                       # all heads (~4 min each on an idle 2-core CPU)
    python scripts/compare_heads.py --heads fcn,ccnet_r2 -- trainer.max_steps=50

Writes ``results.csv``, ``results.md`` and ``results.png`` into ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from segattn.engine.launch import training_precision
from segattn.utils.io import atomic_path, write_text
from segattn.utils.precision import autocast_dtype
from segattn.utils.profiling import peak_memory_bytes, training_step

ROOT = Path(__file__).resolve().parents[1]
HEADS = {  # name -> overrides of train.py
    "fcn": ["head=fcn"],
    "ccnet_r1": ["head=ccnet", "head.recurrence=1"],
    "ccnet_r2": ["head=ccnet", "head.recurrence=2"],
    "danet": ["head=danet"],
    "nonlocal": ["head=nonlocal"],
}
COLOURS = ("red", "green", "blue", "yellow")


def compose(overrides: list[str]):
    """The training config ``train.py`` would build from ``overrides``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from segattn.cli.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("train", overrides=overrides)


def train_step_peak_mb(overrides: list[str]) -> float:
    """Peak tensor MB of one training step of the model, batch shape and precision the run used (CPU)."""
    from segattn.models.build import build_segmentor

    cfg = compose(overrides)
    torch.manual_seed(0)
    num_classes = len(cfg.data.dataset.classes)
    model = build_segmentor(cfg, num_classes).train()
    b, (h, w) = cfg.data.batch_size, cfg.data.train_transform.crop_size
    images, masks = torch.randn(b, 3, h, w), torch.randint(0, num_classes, (b, h, w))
    amp = autocast_dtype(training_precision(cfg.trainer))  # the run's precision
    step = training_step(model, images, masks, torch.optim.SGD(model.parameters(), lr=0.01), amp)
    return peak_memory_bytes(step, torch.device("cpu")) / 1e6


def run_head(name: str, overrides: list[str], run_dir: Path) -> dict:
    """Train one head with ``python train.py``; return its row."""
    args = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}",
            "trainer.enable_progress_bar=false"]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"training {name} failed ({' '.join(args)}):\n{proc.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    iou = {c: (v["IoU"] if v["IoU"] is not None else 0.0) for c, v in metrics["per_class"].items()}
    return {
        "head": name, "mIoU": metrics["mIoU"], "colour_mIoU": sum(iou[c] for c in COLOURS) / len(COLOURS),
        "aAcc": metrics["aAcc"], "steps": metrics["step"], "train_s": seconds,
        "train_peak_mb": train_step_peak_mb(overrides), **{f"IoU_{c}": v for c, v in iou.items()},
    }


def markdown(rows: list[dict], recipe: str) -> str:
    lines = [f"Context task, {recipe}", "",
             "| head | mIoU (5 classes) | mIoU (4 colour classes) | aAcc | train time (s) | train-step peak MB |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['head']} | {r['mIoU']:.1f} | {r['colour_mIoU']:.1f} | {r['aAcc']:.1f} | {r['train_s']:.0f} "
              f"| {r['train_peak_mb']:.0f} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["head"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].bar(names, [r["colour_mIoU"] for r in rows], color=["tab:gray" if n == "fcn" else "tab:blue" for n in names])
    axes[0].axhline(100 / len(COLOURS), color="k", ls=":", lw=1, label="guessing the colour")
    axes[0].set(title="mIoU of the 4 colour classes (%)", ylim=(0, 100))
    axes[0].legend(fontsize=8)
    axes[1].bar(names, [r["train_s"] for r in rows])
    axes[1].set(title="training wall time (s)")
    axes[2].bar(names, [r["train_peak_mb"] for r in rows])
    axes[2].set(title="training-step peak tensor MB")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heads", default=",".join(HEADS), help=f"comma-separated subset of {list(HEADS)}")
    parser.add_argument("--runs", type=Path, default=Path("outputs/context"), help="parent of the run folders")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/context"))
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for every head (after --)")
    args = parser.parse_args()
    names = args.heads.split(",")
    unknown = [n for n in names if n not in HEADS]
    if unknown:
        parser.error(f"--heads: unknown {unknown}; known: {list(HEADS)}")

    rows = []
    for name in names:
        overrides = ["data=context", *HEADS[name], *args.overrides]
        row = run_head(name, overrides, (args.runs / name).resolve())
        rows.append(row)
        print(f"{name}: mIoU {row['mIoU']:.1f}, colour mIoU {row['colour_mIoU']:.1f}, {row['train_s']:.0f} s, "
              f"{row['train_peak_mb']:.0f} MB", flush=True)

    cfg = compose(["data=context", *args.overrides])
    h, w = cfg.data.train_transform.crop_size
    recipe = (f"{h}x{w} images, ResNet-{cfg.backbone.depth} output stride {cfg.backbone.output_stride} from scratch, "
              f"head channels {cfg.head.channels}, auxiliary FCN head weight {cfg.model.aux_weight}, "
              f"batch {cfg.data.batch_size}, {cfg.trainer.max_steps} steps, SGD lr {cfg.optim.lr} "
              f"(head x{cfg.optim.head_lr_mult}), {training_precision(cfg.trainer)}, CPU ({torch.get_num_threads()} threads). "
              f"Colour classes: a local head can only guess (25% per pixel).")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(args.out / "results.csv", buffer.getvalue())
    table = markdown(rows, recipe)
    write_text(args.out / "results.md", table)
    plot(rows, args.out / "results.png")
    print("\n" + table)


if __name__ == "__main__":
    main()
