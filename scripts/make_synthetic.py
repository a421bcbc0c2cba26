#!/usr/bin/env python
"""Write the synthetic datasets: Cityscapes layout (label ids) and/or ADE20K layout (0 = other).

    python scripts/make_synthetic.py                       # data/synthetic/cityscapes (the default run's data)
    python scripts/make_synthetic.py --dataset ade20k --num-train 100 --num-val 10
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from segattn.data.synthetic import generate_ade20k, generate_cityscapes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["cityscapes", "ade20k", "both"], default="cityscapes")
    p.add_argument("--root", type=Path, default=Path("data/synthetic"),
                   help="parent folder: writes <root>/cityscapes and/or <root>/ADEChallengeData2016")
    p.add_argument("--num-train", type=int, default=None, help="default: 200 (cityscapes), 100 (ade20k)")
    p.add_argument("--num-val", type=int, default=None, help="default: 20 (cityscapes), 10 (ade20k)")
    p.add_argument("--num-test", type=int, default=0, help="cityscapes test images (labels all void)")
    p.add_argument("--height", type=int, default=256, help="cityscapes image height")
    p.add_argument("--width", type=int, default=512, help="cityscapes image width")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="delete an existing output folder first")
    args = p.parse_args(argv)

    jobs = []
    if args.dataset in ("cityscapes", "both"):
        counts = dict(num_train=args.num_train or 200, num_val=20 if args.num_val is None else args.num_val)
        jobs.append((args.root / "cityscapes", lambda out: generate_cityscapes(
            out, num_test=args.num_test, height=args.height, width=args.width, seed=args.seed, **counts)))
    if args.dataset in ("ade20k", "both"):
        counts = dict(num_train=args.num_train or 100, num_val=10 if args.num_val is None else args.num_val)
        jobs.append((args.root / "ADEChallengeData2016", lambda out: generate_ade20k(
            out.parent, seed=args.seed, **counts)))
    for out, generate in jobs:
        if out.exists():
            if not args.force:
                print(f"{out} exists: left as is (--force regenerates it)", file=sys.stderr)
                continue
            shutil.rmtree(out)
        start = time.perf_counter()
        generate(out)
        print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
