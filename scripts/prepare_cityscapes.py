#!/usr/bin/env python
"""Optional: write *_gtFine_labelTrainIds.png next to each *_gtFine_labelIds.png (train ids 0..18,
255 = ignore), for tools that expect them; the loader reads label ids directly without this.

    python scripts/prepare_cityscapes.py /path/to/cityscapes [--splits train val] [--workers 4]
    python train.py data=cityscapes data.root=/path/to/cityscapes data.dataset.use_train_ids=true

Resumable: files already converted are skipped; each file is written to a temporary name and
renamed, so an interrupted run never leaves a half-written label behind.
"""
from __future__ import annotations

import argparse
import os
import sys
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segattn.data.cityscapes import NUM_LABEL_IDS, label_ids_to_train_ids
from segattn.data.errors import DatasetError, describe_tree
from segattn.data.files import read_label

SRC, DST = "_gtFine_labelIds.png", "_gtFine_labelTrainIds.png"


def convert(src: Path) -> str:
    """Write the train-id file of ``src`` atomically; returns an error message or ''."""
    dst = src.with_name(src.name[: -len(SRC)] + DST)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        label_ids = read_label(src)
        present = np.flatnonzero(np.bincount(label_ids.ravel(), minlength=256))
        bad = [int(v) for v in present if NUM_LABEL_IDS <= v < 255]
        if bad:
            return f"{src}: values {bad} are not Cityscapes label ids (0-33)"
        ok, png = cv2.imencode(".png", label_ids_to_train_ids(label_ids))
        if not ok:
            return f"{src}: could not encode the PNG"
        with open(tmp, "wb") as f:
            f.write(png.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except (DatasetError, OSError) as err:
        tmp.unlink(missing_ok=True)
        return str(err)
    return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="Cityscapes folder holding gtFine/")
    p.add_argument("--splits", nargs="+", default=["train", "val"])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)

    todo, total = [], 0
    for split in args.splits:
        folder = args.root / "gtFine" / split
        if not folder.is_dir():
            print(f"error: {folder} not found. Expected {args.root}/gtFine/<split>/<city>/*{SRC}.\n"
                  f"Found:\n{describe_tree(args.root)}", file=sys.stderr)
            return 2
        sources = sorted(folder.glob(f"*/*{SRC}"))
        total += len(sources)
        todo += [s for s in sources if not s.with_name(s.name[: -len(SRC)] + DST).exists()]
    if total == 0:
        print(f"error: no *{SRC} files under {args.root}/gtFine/{{{','.join(args.splits)}}}", file=sys.stderr)
        return 2
    print(f"{total} label files, {total - len(todo)} already converted, {len(todo)} to do")
    if args.workers > 1:
        with Pool(args.workers) as pool:
            results = pool.imap_unordered(convert, todo, chunksize=8)
            errors = [e for e in tqdm(results, total=len(todo), unit="file") if e]
    else:
        errors = [e for e in tqdm(map(convert, todo), total=len(todo), unit="file") if e]
    for err in errors[:10]:
        print("error:", err, file=sys.stderr)
    if errors:
        print(f"{len(errors)} files failed (listed above, first 10); fix them and run again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
