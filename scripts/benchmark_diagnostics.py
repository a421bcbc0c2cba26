#!/usr/bin/env python
"""Cost of the attention diagnostics callback against the training step it rides on (CPU or GPU).

    python scripts/benchmark_diagnostics.py                                  # quick start: ResNet-18 + CCNet, synthetic data
    python scripts/benchmark_diagnostics.py head=danet backbone=resnet50 --repeats 20

For the model and batch ``train.py`` would build from the overrides, at the run's precision, interleaved
(A, B, C, D, A, B, ...) and each the median of ``--repeats``: the training step alone (A), the training
step followed by the gate read the callback makes every ``log_every_n_steps`` steps (B), the gate
read alone (C), and the callback's pass after each validation (D: ``num_images`` images of ``crop`` x
``crop`` pixels, the most it reads). The overhead is C every ``log_every_n_steps`` steps plus D
every ``val_check_interval`` steps, as a share of the training time in between (A - B is within
the noise of a step).
Prints a markdown table and writes it to ``--out`` (default ``benchmarks/diagnostics/results.md``).
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Optional, Sequence

import torch

from segattn.cli.config import compose_train
from segattn.diagnostics.gates import gate_values, gated_blocks
from segattn.diagnostics.measure import measure_on_batch
from segattn.engine.launch import training_precision
from segattn.utils.io import write_text
from segattn.utils.precision import autocast_dtype
from segattn.utils.profiling import seconds, training_step


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="train.py overrides (head=..., backbone=..., data=...)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/diagnostics/results.md"))
    args = parser.parse_args(argv)

    from segattn.models.build import build_segmentor

    cfg = compose_train(args.overrides)
    device = torch.device(args.device)
    diag = cfg.callbacks.attention_diagnostics
    num_classes = len(cfg.data.dataset.classes) if "classes" in cfg.data.dataset else 19
    torch.manual_seed(0)
    model = build_segmentor(cfg, num_classes).to(device)
    for block in gated_blocks(model).values():  # an engaged block: the maps are not trivially uniform
        torch.nn.init.constant_(block.gamma if hasattr(block, "gamma") else block.conv_out.bn.weight, 0.1)
    b, (h, w) = cfg.data.batch_size or 2, cfg.data.train_transform.crop_size
    images = torch.randn(b, 3, h, w, device=device)
    masks = torch.randint(0, num_classes, (b, h, w), device=device)
    precision = training_precision(cfg.trainer)
    step = training_step(model, images, masks, torch.optim.SGD(model.parameters(), lr=1e-4), autocast_dtype(precision))
    crop = diag.crop, diag.crop
    val_images = torch.randn(1, 3, *crop, device=device)

    def read_gates() -> None:
        gate_values(gated_blocks(model))

    def with_gates() -> None:
        step()
        read_gates()

    def validation_pass() -> None:
        for _ in range(diag.num_images):
            measure_on_batch(model, val_images)

    for _ in range(args.warmup):
        step(), with_gates(), validation_pass()
    times = {fn: [] for fn in (step, with_gates, read_gates, validation_pass)}
    for _ in range(args.repeats):  # interleaved: drifts of the machine hit all of them alike
        for fn, samples in times.items():
            samples.append(seconds(fn, device))
    step_s, gated_s, gates_s, pass_s = (statistics.median(samples) for samples in times.values())
    log_every, val_every = cfg.trainer.log_every_n_steps, cfg.trainer.val_check_interval
    extra = gates_s / log_every + pass_s / val_every  # per training step, on average
    title = (f"{cfg.head._target_.rsplit('.', 1)[-1]}, ResNet-{cfg.backbone.depth} OS{cfg.backbone.output_stride}, "
             f"batch {b} x {h}x{w}, {precision}, {device.type} ({torch.get_num_threads()} threads), "
             f"median of {args.repeats} interleaved")
    table = "\n".join([
        f"Attention diagnostics overhead: {title}", "",
        "| training step (ms) | step + gate read (ms) | gate read (ms) | validation pass (ms) | log every "
        "| validate every | overhead |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {1e3 * step_s:.1f} | {1e3 * gated_s:.1f} | {1e3 * gates_s:.3f} | {1e3 * pass_s:.1f} ({diag.num_images} "
        f"images, {crop[0]}x{crop[1]}) | {log_every} | {val_every} | {100 * extra / step_s:.2f}% |", ""])
    write_text(args.out, table)
    print(table)


if __name__ == "__main__":
    main()
