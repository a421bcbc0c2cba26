"""``segattn-convert SRC DST [--format auto|mmseg|ccnet|danet] [--dataset NAME] [--align-corners true|false]``."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def parser() -> argparse.ArgumentParser:
    from segattn.convert import FORMATS
    from segattn.convert.release_settings import DATASETS

    p = argparse.ArgumentParser(prog="segattn-convert", description="Convert an mmseg model-zoo file or an official "
                                "CCNet/DANet release into a segattn checkpoint (weights + config + class names).")
    p.add_argument("src", help="source .pth file")
    p.add_argument("dst", help="segattn checkpoint to write (.ckpt)")
    p.add_argument("--format", default="auto", choices=FORMATS, help="source layout (default: detected from the keys)")
    p.add_argument("--dataset", default=None, help=f"{' | '.join(DATASETS)}: class names and data config "
                   "(default: meta CLASSES and the dataset in the file name)")
    p.add_argument("--align-corners", type=_bool, default=None, metavar="true|false",
                   help="default: mmseg zoo rule (769x769 in the name -> true); true for CCNet/DANet")
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    from segattn.checkpoints import CheckpointError
    from segattn.convert import convert_checkpoint, save_checkpoint

    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        ckpt, summary = convert_checkpoint(args.src, args.format, args.dataset, args.align_corners)
        save_checkpoint(ckpt, args.dst)
    except CheckpointError as err:  # the reader's refusals and the converter's (ConversionError)
        raise SystemExit(f"segattn-convert: error: {err}") from None
    print(summary)
    print(f"wrote {args.dst} in {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
