#!/usr/bin/env python
"""Per-class pixel frequencies of one split: a table on stdout, CSV and a bar chart PNG.

Uses the same data configs as train.py, so it checks a download exactly as training reads it:

    python scripts/dataset_stats.py data=cityscapes data.root=/path/to/cityscapes --split train
    python scripts/dataset_stats.py                      # the synthetic data (generated if missing)

Columns: pixels, share of labelled pixels, share of images containing the class, and the
median-frequency-balancing weight (median share / share), a common choice of class weights. The
weights are also written to ``<out>/<dataset>_<split>_class_weight.json``, which a loss reads:

    python train.py data=cityscapes data.root=... loss.class_weight=dataset_stats/CityscapesDataset_train_class_weight.json
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from segattn.configs import CONFIG_DIR
from segattn.losses.weights import median_frequency_weights
from segattn.utils.io import write_json



class _Counts(Dataset):
    """Per-image class histogram (K + 1 bins, last = ignored) of a SegDataset, before transforms."""

    def __init__(self, dataset, num_classes: int):
        self.dataset, self.k = dataset, num_classes

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> torch.Tensor:
        mask = self.dataset.load(i)[1].ravel().astype(np.int64)
        return torch.from_numpy(np.bincount(np.minimum(mask, self.k), minlength=self.k + 1))


def class_stats(dataset, num_classes: int, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixels per class, images containing each class), both shape K; ignored pixels dropped."""
    pixels, images = np.zeros(num_classes, np.int64), np.zeros(num_classes, np.int64)
    loader = DataLoader(_Counts(dataset, num_classes), batch_size=None, num_workers=workers)
    for counts in tqdm(loader, total=len(dataset), unit="img"):
        counts = counts.numpy()[:num_classes]
        pixels += counts
        images += counts > 0
    return pixels, images


def write_report(names, pixels, images, n_images: int, out: Path, title: str) -> None:
    share = pixels / max(pixels.sum(), 1)
    weight = median_frequency_weights(pixels)
    write_json(out.with_name(out.name + "_class_weight.json"),
               {"class_weight": [round(float(w), 6) for w in weight], "classes": list(names),
                "method": "median_frequency", "source": title})
    rows = [(n, int(p), 100 * s, 100 * i / n_images, w) for n, p, s, i, w in zip(names, pixels, share, images, weight)]
    width = max(len(n) for n in names)
    print(f"{'class':<{width}}  {'pixels':>13}  {'share %':>8}  {'in images %':>11}  {'mfb weight':>10}")
    for n, p, s, i, w in rows:
        print(f"{n:<{width}}  {p:>13,}  {s:>8.3f}  {i:>11.1f}  {w:>10.3f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([("class", "pixels", "share_percent", "images_percent", "mfb_weight"), *rows])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(names)), 4), layout="constrained")
    ax.bar(range(len(names)), 100 * share, color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_ylabel("share of labelled pixels (%)")
    ax.set_yscale("log")
    ax.set_title(title)
    fig.savefig(out.with_suffix(".png"), dpi=120)
    plt.close(fig)
    print(f"wrote {out.with_suffix('.csv')}, {out.with_suffix('.png')} and {out.name}_class_weight.json "
          f"(loss.class_weight={out.with_name(out.name + '_class_weight.json')})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="data config overrides as for train.py (data=..., data.root=...)")
    p.add_argument("--split", default=None, help="default: the config's train split")
    p.add_argument("--out", type=Path, default=Path("dataset_stats"), help="output folder")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    overrides = [("+" + o if o.startswith("data=") else o) for o in args.overrides]
    if not any(o.startswith("+data=") for o in overrides):
        overrides.insert(0, "+data=synthetic")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(overrides=overrides)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    split = args.split or dm.train_split
    dataset = dm.dataset_factory(root=dm.root, split=split)
    pixels, images = class_stats(dataset, dm.num_classes, args.workers)
    name = cfg.data.dataset._target_.rsplit(".", 1)[-1]
    write_report(dm.class_names, pixels, images, len(dataset), args.out / f"{name}_{split}",
                 f"{name} {split}: {len(dataset)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
