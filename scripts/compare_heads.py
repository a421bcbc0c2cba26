"""Train every head on the context task (conf/data/context.yaml) with one recipe and compare them.

Each head is trained by the real entry point, ``python train.py data=context head=<head> seed=<s> ...``,
once per seed, in its own run folder ``<--runs>/<head>/seed_<s>``; the table gets each run's last
validation (``metrics.json``): mIoU over all classes, mIoU over the four colour classes (the ones
decided by the far marker), the training wall time, and the peak tensor memory of one training step
of the same model and batch (``segattn.utils.profiling.peak_memory_bytes``). Over several seeds it
reports mean ± std (sample) per head, draws every seed, and names the heads whose intervals overlap.

    python scripts/compare_heads.py                       # all heads, seed 0 (~2-4 min each on a 2-core CPU)
    python scripts/compare_heads.py seeds=[0,1,2]         # every head at three seeds
    python scripts/compare_heads.py --heads fcn,ccnet_r2 -- seeds=[0,1] trainer.max_steps=50

``seeds=[...]`` is this script's own key; every other ``key=value`` goes to ``train.py``. The results are
rewritten after every run, and a run folder that holds its row (``compare_row.json``) is not trained
again, so the same command continues an interrupted comparison (another ``--runs`` starts afresh).
Writes ``results.csv`` (one row per head and seed), ``results.md`` and ``results.png`` into ``--out``.
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

from segattn.cli.config import compose_train
from segattn.engine.launch import training_precision
from segattn.evaluation.spread import Spread, overlap_sentences, spread
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
    "gcnet": ["head=gcnet"],
    "dnl": ["head=dnl"],
    "emanet": ["head=emanet"],
    "isanet": ["head=isanet"],
    "ocrnet": ["head=ocrnet", "model.aux_weight=0"],
    "ann": ["head=ann"],
    "psanet": ["head=psanet"],
}
COLOURS = ("red", "green", "blue", "yellow")
ROW_FILE = "compare_row.json"  # in a run folder: its finished row (a rerun reuses it instead of training again)


def train_step_peak_mb(overrides: list[str]) -> float:
    """Peak tensor MB of one training step of the model, batch shape and precision the run used (CPU)."""
    from segattn.models.build import build_segmentor

    cfg = compose_train(overrides)
    torch.manual_seed(0)
    num_classes = len(cfg.data.dataset.classes)
    model = build_segmentor(cfg, num_classes).train()
    b, (h, w) = cfg.data.batch_size, cfg.data.train_transform.crop_size
    images, masks = torch.randn(b, 3, h, w), torch.randint(0, num_classes, (b, h, w))
    amp = autocast_dtype(training_precision(cfg.trainer))  # the run's precision
    step = training_step(model, images, masks, torch.optim.SGD(model.parameters(), lr=0.01), amp)
    return peak_memory_bytes(step, torch.device("cpu")) / 1e6


def parse_seeds(overrides: list[str]) -> tuple[list[int], list[str]]:
    """(seeds, the other overrides) from ``seeds=[0,1,2]`` (or ``seeds=0,1,2``) among ``overrides``; seeds [0]
    when absent. Raises ValueError naming the token when a seed is not an integer."""
    seeds, rest = [0], []
    for token in overrides:
        if not token.startswith("seeds="):
            rest.append(token)
            continue
        items = [item.strip() for item in token[len("seeds="):].strip("[]").split(",") if item.strip()]
        if not items or not all(item.lstrip("-").isdigit() for item in items):
            raise ValueError(f"{token!r}: expected seeds=[0,1,2] (one or more integers)")
        seeds = [int(item) for item in items]
    return seeds, rest


def run_head(name: str, seed: int, overrides: list[str], run_dir: Path) -> dict:
    """Train one head at one seed with ``python train.py``; return its row."""
    args = [sys.executable, str(ROOT / "train.py"), *overrides, f"seed={seed}", f"hydra.run.dir={run_dir}",
            "trainer.enable_progress_bar=false"]
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"training {name} failed ({' '.join(args)}):\n{proc.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    iou = {c: (v["IoU"] if v["IoU"] is not None else 0.0) for c, v in metrics["per_class"].items()}
    return {
        "head": name, "seed": seed, "mIoU": metrics["mIoU"], "colour_mIoU": sum(iou[c] for c in COLOURS) / len(COLOURS),
        "aAcc": metrics["aAcc"], "steps": metrics["step"], "train_s": seconds,
        **{f"IoU_{c}": v for c, v in iou.items()},
    }


def per_head(rows: list[dict], key: str) -> dict[str, Spread]:
    """``{head: spread of rows[key] over its seeds}``, heads in the order they ran."""
    heads = list(dict.fromkeys(r["head"] for r in rows))
    return {head: spread([r[key] for r in rows if r["head"] == head]) for head in heads}


def markdown(rows: list[dict], recipe: str) -> str:
    """The README table: per head, mean ± std over its seeds (the values alone for one seed), each seed's
    colour mIoU, and the heads whose colour-mIoU intervals overlap."""
    seeds = sorted({r["seed"] for r in rows})
    stats = {key: per_head(rows, key) for key in ("mIoU", "colour_mIoU", "aAcc", "train_s", "train_peak_mb")}
    over = "mean ± std over seeds " + ", ".join(map(str, seeds)) if len(seeds) > 1 else f"seed {seeds[0]}"
    lines = [f"Context task, {recipe} Values: {over}.", "",
             "| head | mIoU (5 classes) | mIoU (4 colour classes) | colour mIoU per seed | aAcc | train time (s) "
             "| train-step peak MB |", "|---|---:|---:|---:|---:|---:|---:|"]
    for head, colour in stats["colour_mIoU"].items():
        lines.append(f"| {head} | {stats['mIoU'][head].text()} | {colour.text()} | "
                     f"{' / '.join(f'{v:.1f}' for v in colour.values)} | {stats['aAcc'][head].text()} | "
                     f"{stats['train_s'][head].mean:.0f} | {stats['train_peak_mb'][head].mean:.0f} |")
    if len(seeds) > 1:
        sentences = overlap_sentences(stats["colour_mIoU"], "colour mIoU")
        lines += ["", *(f"- {s}." for s in sentences)] if sentences else ["", "- No two heads' intervals overlap."]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segattn.visualization.spread import plot_spread

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), layout="constrained")
    plot_spread(axes[0], per_head(rows, "colour_mIoU"), "mIoU of the 4 colour classes (%)")
    axes[0].axhline(100 / len(COLOURS), color="k", ls=":", lw=1, label="guessing the colour")
    axes[0].set(title="colour mIoU, every seed", ylim=(0, 100))
    axes[0].legend(fontsize=8)
    plot_spread(axes[1], per_head(rows, "train_s"), "s")
    axes[1].set(title="training wall time (s)")
    plot_spread(axes[2], per_head(rows, "train_peak_mb"), "MB")
    axes[2].set(title="training-step peak tensor MB")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heads", default=",".join(HEADS), help=f"comma-separated subset of {list(HEADS)}")
    parser.add_argument("--runs", type=Path, default=Path("outputs/context"), help="parent of the run folders")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/context"))
    parser.add_argument("overrides", nargs="*", help="seeds=[0,1,2] and extra train.py overrides for every head")
    args = parser.parse_args()
    names = args.heads.split(",")
    unknown = [n for n in names if n not in HEADS]
    if unknown:
        parser.error(f"--heads: unknown {unknown}; known: {list(HEADS)}")
    try:
        seeds, extra = parse_seeds(args.overrides)
    except ValueError as err:
        parser.error(str(err))

    recipe = describe_recipe(extra)
    rows, peaks = [], {}
    for seed in seeds:  # seed-major: an interrupted comparison has every head at the first seeds
        for name in names:
            overrides = ["data=context", *HEADS[name], *extra]
            run_dir = (args.runs / name / f"seed_{seed}").resolve()
            done = run_dir / ROW_FILE
            if done.is_file():  # trained by an earlier, interrupted call
                row = json.loads(done.read_text())
            else:
                row = run_head(name, seed, overrides, run_dir)
                if name not in peaks:
                    peaks[name] = train_step_peak_mb(overrides)
                row["train_peak_mb"] = peaks[name]
                write_text(done, json.dumps(row) + "\n")
            rows.append(row)
            print(f"{name} seed {seed}: mIoU {row['mIoU']:.1f}, colour mIoU {row['colour_mIoU']:.1f}, "
                  f"{row['train_s']:.0f} s, {row['train_peak_mb']:.0f} MB", flush=True)
            write_results(rows, recipe, args.out)
    print("\n" + markdown(rows, recipe))


def describe_recipe(extra: list[str]) -> str:
    """One sentence on the recipe every head trains with."""
    cfg = compose_train(["data=context", *extra])
    h, w = cfg.data.train_transform.crop_size
    recipe = (f"{h}x{w} images, ResNet-{cfg.backbone.depth} output stride {cfg.backbone.output_stride} from scratch, "
              f"head channels {cfg.head.channels}, auxiliary FCN head weight {cfg.model.aux_weight}, "
              f"batch {cfg.data.batch_size}, {cfg.trainer.max_steps} steps, SGD lr {cfg.optim.lr} "
              f"(head x{cfg.optim.head_lr_mult}), {training_precision(cfg.trainer)}, CPU ({torch.get_num_threads()} threads). "
              f"Colour classes: a local head can only guess (25% per pixel).")
    return recipe


def write_results(rows: list[dict], recipe: str, out: Path) -> None:
    """``results.csv`` (a row per head and seed), ``results.md`` and ``results.png`` in ``out``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "results.csv", buffer.getvalue())
    write_text(out / "results.md", markdown(rows, recipe))
    plot(rows, out / "results.png")


if __name__ == "__main__":
    main()
