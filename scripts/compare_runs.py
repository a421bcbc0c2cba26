#!/usr/bin/env python
"""Compare training runs side by side: a markdown table and a per-class IoU chart.

    python scripts/compare_runs.py outputs/ccnet_resnet18/<run> outputs/danet_resnet18/<run> [--out comparison]

Each run folder needs ``metrics.json`` (written by train.py at every validation); head and backbone
come from ``.hydra/``, the training time from the TensorBoard events in ``tb/``. Writes
``<out>/comparison.md`` (table: head, backbone, steps, mIoU, aAcc, mAcc, time, peak memory) and
``<out>/per_class_iou.png``, and prints the table.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from segattn.visualization.compare import compare_runs


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="training run folders")
    parser.add_argument("--out", default="comparison", help="folder for comparison.md and per_class_iou.png")
    args = parser.parse_args(argv)
    try:
        text = compare_runs(args.runs, args.out)
    except ValueError as err:
        parser.error(str(err))
    print(text)


if __name__ == "__main__":
    main()
