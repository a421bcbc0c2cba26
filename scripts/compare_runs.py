#!/usr/bin/env python
"""Compare training runs side by side: a markdown table and a per-class IoU chart.

    python scripts/compare_runs.py outputs/ccnet_resnet18/<run> outputs/danet_resnet18/<run> [--out comparison]

Each run folder needs ``metrics.json`` (written by train.py at every validation); head and backbone
come from ``.hydra/``, the training time from the TensorBoard events in ``tb/``. Writes
``<out>/comparison.md`` (table: head, backbone, steps, mIoU, aAcc, mAcc, time, peak memory) and
``<out>/per_class_iou.png``, and prints the table.

    python scripts/compare_runs.py --group ccnet outputs/ccnet/s0 outputs/ccnet/s1 --group danet outputs/danet/s0 outputs/danet/s1

With ``--group NAME RUN [RUN ...]`` (repeated runs, e.g. seeds) it also writes ``<out>/groups.md``: mean ±
std per group, every run's mIoU, and which groups' intervals overlap, and ``<out>/groups_miou.png``.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from segattn.visualization.compare import compare_groups, compare_runs


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="training run folders")
    parser.add_argument("--group", nargs="+", action="append", default=[], metavar=("NAME", "RUN"),
                        help="a named group of run folders (repeated runs); give it once per group")
    parser.add_argument("--out", default="comparison", help="folder for comparison.md and per_class_iou.png")
    args = parser.parse_args(argv)
    groups = {name: folders for name, *folders in args.group}
    if any(not folders for folders in groups.values()) or len(groups) < len(args.group):
        parser.error(f"--group: expected NAME RUN [RUN ...] with distinct names, got {args.group}")
    folders = list(args.runs) + [folder for group in groups.values() for folder in group]
    if not folders:
        parser.error("expected run folders or --group NAME RUN [RUN ...], got none")
    try:
        text = compare_runs(folders, args.out)
        if groups:
            text += "\n" + compare_groups(groups, args.out)
    except ValueError as err:
        parser.error(str(err))
    print(text)


if __name__ == "__main__":
    main()
