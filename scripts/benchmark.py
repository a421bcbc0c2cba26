"""Speed, memory and FLOPs of every segmentation head on the same backbone and input (Hydra: conf/benchmark.yaml).

Per head: training images/s (one SGD step: forward_train, weighted cross-entropy incl. the auxiliary
head, backward, optimizer step), peak tensor memory of that step (profiler alloc/free records,
``segattn.utils.profiling.peak_memory_bytes``), inference ms per image (whole image and sliding
window, ``segattn.inference.passes.predict_probabilities``), each the median of ``repeats`` runs after
``warmup``; forward GFLOPs per image of the model and of the head alone (``FlopCounterMode``: convs,
matmuls and attention kernels; element-wise ops are not counted); and the share of the machine's
measured matmul throughput that a training step reaches (counted FLOPs / step time / matmul FLOP/s).
``precision=auto`` (the default) runs at the precision the device computes fastest, as training
does (``segattn.utils.precision``: bf16-mixed on CPUs with native bf16 and on CUDA >= 8.0), and
the model runs channels-last under mixed precision, as in training (``channels_last=auto``). Each
timed call is preceded by warm-up calls until two in a row agree to ``steady_tolerance`` (at least ``warmup``, at most ``max_warmup``).

    python scripts/benchmark.py                       # all heads, CPU defaults (ResNet-18, 2 x 256x256)
    python scripts/benchmark.py device=cuda batch_size=8 input_size=[512,1024] 'only=[ccnet_r2,danet]'

Writes ``results_<device>_<precision>.{csv,md,png}`` and, with ``profile=true``,
``profile_<device>_<precision>_<head>.txt`` (torch.profiler table of the slowest head) into ``out``.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.profiler import ProfilerActivity, profile

from segattn.cli.config import CONFIG_DIR
from segattn.inference.passes import predict_probabilities
from segattn.models.segmentor import Segmentor
from segattn.utils.device import resolve_device
from segattn.utils.io import atomic_path, write_text
from segattn.utils.precision import autocast_dtype, resolve_precision as resolve_precision_name, use_channels_last
from segattn.utils.profiling import (count_flops, machine_name, matmul_flops_per_second, median_seconds,
                                     peak_memory_bytes, training_step)


def resolve_precision(name: str, device: torch.device) -> tuple[str, torch.dtype | None]:
    """(precision name, autocast dtype or None); ``auto`` is what ``device`` computes fastest."""
    name = resolve_precision_name(name, device)
    return name, autocast_dtype(name)


def selected_heads(cfg: DictConfig) -> list[str]:
    names = list(cfg.heads)
    wanted = list(cfg.only) if cfg.only else names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise ValueError(f"only={wanted}: unknown head names {unknown}; heads are {names}")
    return wanted


def measure_head(cfg: DictConfig, name: str, device: torch.device, amp: torch.dtype | None,
                 channels_last: bool) -> tuple[dict, callable]:
    """The row of one head, and its training step (for the profiler)."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = Segmentor(instantiate(cfg.backbone), instantiate(cfg.heads[name]), cfg.num_classes, **cfg.model)
    model = model.to(device, memory_format=fmt)
    if cfg.compile:
        model.compile()
    b, (h, w) = cfg.batch_size, cfg.input_size
    images = torch.randn(b, 3, h, w, device=device).contiguous(memory_format=fmt)
    masks = torch.randint(0, cfg.num_classes, (b, h, w), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    train = training_step(model, images, masks, optimizer, amp)
    steady = dict(max_warmup=cfg.max_warmup, tolerance=cfg.steady_tolerance)
    train_s = median_seconds(train, device, cfg.warmup, cfg.repeats, **steady)
    train_peak = peak_memory_bytes(train, device)
    train_flops = count_flops(train)["Global"]

    model.eval()
    autocast = dict(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None)

    def infer(mode: str):
        def run():
            with torch.autocast(**autocast):
                predict_probabilities(model, images, mode, cfg.slide.crop_size, cfg.slide.stride, num_classes=cfg.num_classes)
        return run

    whole_s = median_seconds(infer("whole"), device, cfg.warmup, cfg.repeats, **steady)
    slide_s = median_seconds(infer("slide"), device, cfg.warmup, cfg.repeats, **steady)
    infer_peak = peak_memory_bytes(infer("whole"), device)

    def forward_one():
        with torch.no_grad(), torch.autocast(**autocast):
            model(images[:1])

    flops = count_flops(forward_one)
    row = {
        "head": name, "train_img_s": b / train_s, "train_peak_mb": train_peak / 1e6,
        "whole_ms": whole_s * 1e3 / b, "slide_ms": slide_s * 1e3 / b, "infer_peak_mb": infer_peak / 1e6,
        "gflops": flops["Global"] / 1e9, "head_gflops": flops.get("Segmentor.head", 0) / 1e9,
        "train_gflop_s": train_flops / train_s / 1e9,
    }
    return row, train


def profile_table(step, device: torch.device) -> str:
    """torch.profiler's op table of one call of ``step``, heaviest self time first."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities, record_shapes=True) as prof:
        step()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages(group_by_input_shape=True).table(sort_by=key, row_limit=25, max_name_column_width=50)


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "",
             "| head | train img/s | train peak MB | whole ms/img | slide ms/img | infer peak MB "
             "| GFLOPs/img (model) | GFLOPs/img (head) | train GFLOP/s | % of matmul peak |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['head']} | {r['train_img_s']:.2f} | {r['train_peak_mb']:.0f} | {r['whole_ms']:.1f} | "
                     f"{r['slide_ms']:.1f} | {r['infer_peak_mb']:.0f} | {r['gflops']:.1f} | {r['head_gflops']:.2f} | "
                     f"{r['train_gflop_s']:.1f} | {r['matmul_share_pct']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["head"] for r in rows]
    panels = [("training images/s", ["train_img_s"]), ("peak tensor memory, training (MB)", ["train_peak_mb"]),
              ("inference ms per image", ["whole_ms", "slide_ms"]), ("forward GFLOPs per image", ["gflops", "head_gflops"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    for ax, (label, keys) in zip(axes, panels):
        width = 0.8 / len(keys)
        for i, key in enumerate(keys):
            ax.bar([x + i * width for x in range(len(names))], [r[key] for r in rows], width, label=key)
        ax.set_xticks([x + width * (len(keys) - 1) / 2 for x in range(len(names))], names, rotation=30, ha="right")
        ax.set_title(label, fontsize=10)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="benchmark")
def main(cfg: DictConfig) -> None:
    device = resolve_device(cfg.device)
    precision, amp = resolve_precision(cfg.precision, device)
    channels_last = use_channels_last(cfg.channels_last, precision)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    names = selected_heads(cfg)
    out = Path(hydra.utils.to_absolute_path(cfg.out))
    machine = machine_name(device)
    peak = matmul_flops_per_second(device, amp or torch.float32, cfg.matmul_size)
    print(f"{machine}: {cfg.matmul_size}^2 matmul in {precision}: {peak / 1e9:.1f} GFLOP/s", flush=True)

    rows, steps = [], {}
    for name in names:
        row, steps[name] = measure_head(cfg, name, device, amp, channels_last)
        row["matmul_share_pct"] = 100 * row["train_gflop_s"] * 1e9 / peak
        rows.append(row)
        print(f"{name}: {row['train_img_s']:.2f} img/s, {row['train_peak_mb']:.0f} MB, whole {row['whole_ms']:.1f} ms, "
              f"slide {row['slide_ms']:.1f} ms, {row['gflops']:.1f} GFLOPs", flush=True)

    tag = f"{device.type}_{precision}"
    h, w = cfg.input_size
    header = (f"### {machine} ({tag}), {precision}{', channels_last' if channels_last else ''}, "
              f"ResNet-{cfg.backbone.depth} output stride {cfg.backbone.output_stride}, batch {cfg.batch_size} x {h}x{w}, "
              f"{cfg.num_classes} classes, aux weight {cfg.model.aux_weight}; slide {list(cfg.slide.crop_size)} "
              f"stride {list(cfg.slide.stride)}; {'torch.compile; ' if cfg.compile else ''}median of {cfg.repeats} after a steady warm-up; "
              f"matmul peak {peak / 1e9:.0f} GFLOP/s ({cfg.matmul_size}^2); torch {torch.__version__}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["machine", "precision", "channels_last", "batch", "input", *rows[0]])
    writer.writeheader()
    for r in rows:
        writer.writerow({"machine": machine, "precision": precision, "channels_last": channels_last,
                         "batch": cfg.batch_size, "input": f"{h}x{w}", **r})
    write_text(out / f"results_{tag}.csv", buffer.getvalue())
    table = markdown(rows, header)
    write_text(out / f"results_{tag}.md", table)
    plot(rows, header.removeprefix("### ")[:160], out / f"results_{tag}.png")
    print("\n" + table)
    if cfg.profile:
        slowest = min(rows, key=lambda r: r["train_img_s"])["head"]
        path = out / f"profile_{tag}_{slowest}.txt"
        write_text(path, f"one training step of {slowest}: {header.removeprefix('### ')}\n\n" + profile_table(steps[slowest], device))
        print(f"profile of the slowest head ({slowest}): {path}")


if __name__ == "__main__":
    main()
