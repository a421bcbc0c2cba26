"""Seconds per image of an exported model on ONNX Runtime against eager PyTorch (whole-image inference).

    python scripts/benchmark_export.py                                   # R50-D8 + CCNet, 1 x 3 x 1024 x 2048, CPU
    python scripts/benchmark_export.py --heads fcn ccnet danet nonlocal --out export_speed.md

Per head: a fresh ``segattn.create_model(head, backbone, output_stride=...)`` in eval mode (random weights:
speed does not depend on them), exported with ``segattn.export_model`` (ONNX, opset 17), then the median of
``--repeats`` calls after ``--warmup`` (``segattn.utils.profiling.median_seconds``) of eager PyTorch in fp32,
eager PyTorch at ``precision=auto`` (bf16-mixed on CPUs with native bf16, as evaluate.py runs) and ONNX Runtime
(CPU provider, fp32). Prints a Markdown table; ``--out`` also writes it (atomically).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import torch

import segattn
from segattn.export.runtime import OnnxRuntimeModel
from segattn.utils.io import write_text
from segattn.utils.precision import inference_autocast, resolve_precision
from segattn.utils.profiling import machine_name, median_seconds

CPU = torch.device("cpu")


def seconds_per_image(head: str, args) -> dict[str, float]:
    """``{"eager fp32", "eager <auto>", "onnxruntime fp32"}`` -> median seconds for one image of ``args.size``."""
    model = segattn.create_model(head, backbone=args.backbone, num_classes=19, output_stride=args.output_stride,
                                 aux_weight=0).eval()
    x = torch.randn(1, 3, *args.size)
    auto = resolve_precision("auto", CPU)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_model = OnnxRuntimeModel(segattn.export_model(model, Path(tmp) / "model.onnx", "onnx", example_size=(512, 512)))

        def eager(precision: str):
            def step():
                with torch.no_grad(), inference_autocast(precision, CPU):
                    model(x)
            return step

        steps = {"eager fp32": eager("32-true"), f"eager {auto}": eager(auto), "onnxruntime fp32": lambda: onnx_model(x)}
        return {name: median_seconds(step, CPU, args.warmup, args.repeats) for name, step in steps.items()}


def main(argv: Optional[Sequence[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", nargs="+", default=["ccnet"], choices=segattn.list_models()["heads"])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--output-stride", type=int, default=8, choices=(8, 16))
    parser.add_argument("--size", type=int, nargs=2, default=[1024, 2048], metavar=("H", "W"))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = {head: seconds_per_image(head, args) for head in args.heads}
    columns = list(next(iter(rows.values())))
    lines = [f"{args.backbone} (output stride {args.output_stride}), 1 x 3 x {args.size[0]} x {args.size[1]}, "
             f"{machine_name(CPU)}; seconds per image, median of "
             f"{args.repeats} after {args.warmup} warm-up", "",
             "| head | " + " | ".join(columns) + " | ONNX Runtime speed-up over eager fp32 |",
             "|---|" + "---:|" * (len(columns) + 1)]
    for head, times in rows.items():
        lines.append(f"| {head} | " + " | ".join(f"{times[c]:.3f}" for c in columns)
                     + f" | {times['eager fp32'] / times['onnxruntime fp32']:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        write_text(args.out, table)
    return table


if __name__ == "__main__":
    main()
