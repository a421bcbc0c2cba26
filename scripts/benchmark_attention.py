"""Time and peak memory of one forward+backward step of each attention block on 512-channel maps.

Rows: criss-cross R=1 and R=2 (segattn's custom autograd function, and the einsum formulation that
mmcv ships, as comparison), DANet PAM and CAM, NonLocal2d in each mode with and without
sub-sampling on its matmul and SDPA paths, the global context block (GCNet), the disentangled
non-local block (DNL, matmul and SDPA), EM attention (EMANet: 64 bases, 3 stages, with the head's
residual 1x1 convs around it, since the EM steps themselves carry no gradient), interlaced sparse attention
(ISANet), the object context block (OCRNet, 19 soft regions from a 1x1 conv), ANN's APNB and AFNB (the one map as
both levels), point-wise spatial attention (PSANet, its hw x hw maps at half resolution) and a naive
non-local block (full HW x HW matmul, 256 inner channels) as the baseline of the CCNet paper's comparison.

Protocol: fp32 (or ``--precision bf16-mixed``: autocast, input in bf16), batch 1, NCHW in fp32 and
channels-last under mixed precision as training runs a model (``--channels-last``); the input
(requires grad, as the previous layer's output does) and the output gradient are allocated before
the step; a step is ``out = block(x); out.backward(grad)`` and drops all gradients. Time: median
of ``--repeats`` steps after ``--warmup``. Memory: peak of the running sum of the alloc/free
records of ``torch.profiler.profile(profile_memory=True)`` during one step, on the block's device
(tensor bytes, not process RSS). Blocks with an HW x HW affinity (PAM, non-local) are skipped on
maps larger than ``--max-pairwise`` positions (CPU default: 97x97).

    python scripts/benchmark_attention.py --devices cpu --sizes 97x97 --methods criss,naive
Writes ``results.csv``, ``results.md`` and ``results.png`` into ``--out`` and prints the table.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from segattn.models.attention.asymmetric_non_local import AsymmetricFusion, AsymmetricPyramidNonLocal
from segattn.models.attention.criss_cross import CrissCrossAttention
from segattn.models.attention.disentangled_non_local import DisentangledNonLocal2d
from segattn.models.attention.dual import ChannelAttention, PositionAttention
from segattn.models.attention.em_attention import EMAttention
from segattn.models.attention.global_context import GlobalContextBlock
from segattn.models.attention.interlaced_sparse import InterlacedSparseAttention
from segattn.models.attention.non_local import NonLocal2d
from segattn.models.attention.object_context import ObjectContextBlock
from segattn.models.attention.point_wise_spatial import PointwiseSpatialAttention
from segattn.utils.precision import autocast_dtype, use_channels_last
from segattn.utils.profiling import peak_memory_bytes

CHANNELS = 512
GOAL_SIZE = "97x97"


class EinsumCrissCross(CrissCrossAttention):
    """mmcv's criss-cross formulation (plain autograd through einsum), same parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        q, k, v = self.query_conv(x), self.key_conv(x), self.value_conv(x)
        self_mask = torch.diag(x.new_full((h,), float("-inf")))[None, :, None, :]
        energy_h = torch.einsum("bchw,bciw->bhwi", q, k) + self_mask
        energy_w = torch.einsum("bchw,bchj->bhwj", q, k)
        attn = F.softmax(torch.cat([energy_h, energy_w], dim=-1), dim=-1)
        out = torch.einsum("bciw,bhwi->bchw", v, attn[..., :h])
        out = out + torch.einsum("bchj,bhwj->bchw", v, attn[..., h:])
        return self.gamma * out + x


class NaiveNonLocal(nn.Module):
    """Embedded-Gaussian non-local block with the HW x HW map built explicitly (the paper's baseline)."""

    def __init__(self, channels: int, inter: int = 256):
        super().__init__()
        self.theta, self.phi, self.g = (nn.Conv2d(channels, inter, 1) for _ in range(3))
        self.out = nn.Conv2d(inter, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta, phi, g = (conv(x).flatten(2) for conv in (self.theta, self.phi, self.g))  # B x C' x N
        attn = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # B x N x N
        y = (g @ attn.transpose(1, 2)).view(b, -1, h, w)
        return x + self.out(y)


class EMAResidual(nn.Module):
    """EM attention as EMAHead runs it (training mode: the bases are updated): ``ReLU(x + BN(W_out ReLU(EMA(W_mid x))))``
    with the frozen ``W_mid``; the gradient reaches ``x`` through the residual and ``W_out``."""

    def __init__(self, channels: int, num_bases: int = 64, num_stages: int = 3):
        super().__init__()
        self.mid = nn.Conv2d(channels, channels, 1).requires_grad_(False)
        self.ema = EMAttention(channels, num_bases, num_stages)
        self.out = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.out(F.relu(self.ema(self.mid(x)))))


class SelfFusion(nn.Module):
    """ANN's AFNB with the one map as both levels (the block's cost at equal widths)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fusion = AsymmetricFusion(channels, channels, 256, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fusion(x, x)


class ObjectContext(nn.Module):
    """OCRNet's object context block with the soft regions of 19 classes from a 1x1 conv of the map, as the head's
    layer3 classifier gives them."""

    def __init__(self, channels: int, classes: int = 19):
        super().__init__()
        self.regions = nn.Conv2d(channels, classes, 1)
        self.ocr = ObjectContextBlock(channels, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ocr(x, self.regions(x))


class Recurrent(nn.Module):
    """The same block applied ``times`` times (RCCA's recurrence, shared weights); segattn's block
    recomputes q/k/v in backward for every pass but the last, as the RCCA head runs it."""

    def __init__(self, block: nn.Module, times: int):
        super().__init__()
        self.block, self.times = block, times
        self.recomputes = type(block) is CrissCrossAttention

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.times):
            x = self.block(x, recompute=i < self.times - 1) if self.recomputes else self.block(x)
        return x


@dataclass
class Method:
    name: str
    build: Callable[[], nn.Module]
    pairwise: bool  # builds (or may build) an HW x HW affinity


def methods() -> list[Method]:
    rows = [
        Method("criss-cross R=1", lambda: Recurrent(CrissCrossAttention(CHANNELS), 1), False),
        Method("criss-cross R=2", lambda: Recurrent(CrissCrossAttention(CHANNELS), 2), False),
        Method("criss-cross einsum (mmcv) R=1", lambda: EinsumCrissCross(CHANNELS), False),
        Method("criss-cross einsum (mmcv) R=2", lambda: Recurrent(EinsumCrissCross(CHANNELS), 2), False),
        Method("PAM", lambda: PositionAttention(CHANNELS), True),
        Method("CAM", ChannelAttention, False),
        Method("naive non-local (HW x HW, 256 ch)", lambda: NaiveNonLocal(CHANNELS), True),
        Method("global context (GCNet)", lambda: GlobalContextBlock(CHANNELS), False),
        Method("disentangled non-local matmul", lambda: DisentangledNonLocal2d(CHANNELS, use_sdpa=False), True),
        Method("disentangled non-local sdpa", lambda: DisentangledNonLocal2d(CHANNELS), True),
        Method("EM attention (EMANet; 64 bases x 3 stages)", lambda: EMAResidual(CHANNELS), False),
        Method("interlaced sparse (ISANet; 8 x 8 groups)", lambda: InterlacedSparseAttention(CHANNELS, 256), False),
        Method("object context (OCRNet; 19 regions)", lambda: ObjectContext(CHANNELS), False),
        Method("APNB (ANN; 110 pooled keys)", lambda: AsymmetricPyramidNonLocal(CHANNELS, 256), False),
        Method("AFNB (ANN; 110 pooled keys)", lambda: SelfFusion(CHANNELS), False),
        Method("point-wise spatial (PSANet; bi-direction, mask 97 x 97)", lambda: PointwiseSpatialAttention(CHANNELS, CHANNELS), True),
    ]
    for mode in ("gaussian", "embedded_gaussian", "dot_product", "concatenation"):
        for sub_sample in (False, True):
            for use_sdpa in (False, True) if mode != "concatenation" else (False,):
                name = f"non-local {mode}{' sub' if sub_sample else ''} {'sdpa' if use_sdpa else 'matmul'}"
                build = lambda m=mode, s=sub_sample, u=use_sdpa: NonLocal2d(CHANNELS, reduction=2, mode=m, sub_sample=s, use_sdpa=u)
                rows.append(Method(name, build, True))
    return rows


def measure(method: Method, size: tuple[int, int], device: torch.device, warmup: int, repeats: int,
            amp: torch.dtype | None = None, channels_last: bool = False) -> tuple[float, float]:
    """(median seconds, peak MB) of one forward+backward step, as a network runs the block: the input
    requires grad (it is the previous layer's output; under autocast, in ``amp``) and the upstream
    gradient exists before the step."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    block = method.build().to(device, memory_format=fmt)
    x = torch.randn(1, CHANNELS, *size, device=device, dtype=amp or torch.float32).to(memory_format=fmt).requires_grad_()
    autocast = dict(device_type=device.type, dtype=amp or torch.float32, enabled=amp is not None)
    with torch.no_grad(), torch.autocast(**autocast):
        grad = torch.randn_like(block(x))
    params = list(block.parameters())

    def step():
        with torch.autocast(**autocast):
            out = block(x)
        out.backward(grad)
        for p in [x, *params]:
            p.grad = None

    def timed() -> float:
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        start = time.perf_counter()
        step()
        sync()
        return time.perf_counter() - start

    for _ in range(warmup):
        step()
    seconds = statistics.median(timed() for _ in range(repeats))
    return seconds, peak_memory_bytes(step, device) / 1e6


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is HxW, e.g. 97x97, got {text!r}") from None
    return h, w


def write_table(rows: list[dict], path: Path) -> str:
    """Markdown table, one block per device: method rows, one 'ms / MB' column per size."""
    lines = []
    for device in dict.fromkeys(r["device"] for r in rows):
        sizes = list(dict.fromkeys(r["size"] for r in rows if r["device"] == device))
        names = list(dict.fromkeys(r["method"] for r in rows if r["device"] == device))
        cell = {(r["method"], r["size"]): r for r in rows if r["device"] == device}
        first = next(r for r in rows if r["device"] == device)
        layout = ", channels-last" if str(first.get("channels_last")) == "True" else ""
        lines += [f"### {device}, {first['precision']}{layout} forward+backward, {CHANNELS} channels, batch 1: "
                  "median time ms / peak MB", ""]
        lines += ["| method | " + " | ".join(sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
        for name in names:
            values = []
            for size in sizes:
                r = cell.get((name, size))
                values.append("skipped" if r is None or r["time_ms"] == "" else f"{r['time_ms']:.1f} / {r['peak_mb']:.0f}")
            lines.append(f"| {name} | " + " | ".join(values) + " |")
        lines.append("")
    text = "\n".join(lines)
    path.write_text(text)
    return text


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = list(dict.fromkeys(r["device"] for r in rows))
    fig, axes = plt.subplots(len(devices), 2, figsize=(13, 4.5 * len(devices)), squeeze=False)
    for axs, device in zip(axes, devices):
        measured = [r for r in rows if r["device"] == device and r["time_ms"] != ""]
        for name in dict.fromkeys(r["method"] for r in measured):
            pts = sorted((r["positions"], r["time_ms"], r["peak_mb"]) for r in measured if r["method"] == name)
            style = "-o" if "criss" in name or "naive" in name else ":."
            axs[0].plot([p[0] for p in pts], [p[1] for p in pts], style, label=name)
            axs[1].plot([p[0] for p in pts], [p[2] for p in pts], style, label=name)
        for ax, label in zip(axs, ("time per step (ms)", "peak tensor memory (MB)")):
            ax.set(xscale="log", yscale="log", xlabel="positions H x W", ylabel=label, title=f"{device}: {label}")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def read_rows(path: Path) -> list[dict]:
    """The rows of an earlier ``results.csv`` (numbers as floats; skipped cells stay ''); none if it is missing."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["positions"] = int(r["positions"])
        for key in ("time_ms", "peak_mb"):
            r[key] = float(r[key]) if r[key] != "" else ""
    return rows


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """``old`` with each row of the same (device, size, method) as a ``new`` one replaced in place; new
    rows without a match are appended."""
    key = lambda r: (r["device"], r["size"], r["method"])
    fresh = {key(r): r for r in new}
    merged = [fresh.pop(key(r), r) for r in old]
    return merged + [r for r in new if key(r) in fresh]


def check_goals(rows: list[dict]) -> list[str]:
    """The goals at CPU 97x97 for criss-cross R=2: against naive non-local (issue 3: 5x faster; issue 15:
    12x less memory) and against mmcv's einsum R=2 (issue 3: 1.2x faster; issue 15: at most 0.65x its memory)."""
    cell = {r["method"]: r for r in rows if r["device"] == "cpu" and r["size"] == GOAL_SIZE and r["time_ms"] != ""}
    ours = cell.get("criss-cross R=2")
    goals = [("naive non-local (HW x HW, 256 ch)", 12.0, 5.0), ("criss-cross einsum (mmcv) R=2", 1 / 0.65, 1.2)]
    lines = []
    for other, memory_goal, time_goal in goals:
        if ours is None or other not in cell:
            continue
        memory, speed = cell[other]["peak_mb"] / ours["peak_mb"], cell[other]["time_ms"] / ours["time_ms"]
        verdict = "met" if memory >= memory_goal and speed >= time_goal else "NOT met"
        lines.append(f"criss-cross R=2 vs {other}: {memory:.2f}x less memory (goal {memory_goal:.2f}x), "
                     f"{speed:.2f}x faster (goal {time_goal}x): {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="33x33,65x65,97x97,128x256", help="comma-separated HxW feature sizes")
    parser.add_argument("--devices", default=None, help="comma-separated, default: cpu plus cuda when available")
    parser.add_argument("--methods", default="", help="comma-separated substrings; run only rows whose name has one")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-pairwise", type=int, default=None,
                        help="largest H*W for blocks with an HW x HW affinity (default 9409 on CPU, no limit on CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed", "16-mixed"],
                        help="32-true (the reference rows), or autocast with the input in bf16/fp16 as a network gives it")
    parser.add_argument("--channels-last", default="auto", choices=["auto", "true", "false"],
                        help="memory format of the block and its input (auto: channels-last under mixed precision, as training)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/attention"))
    parser.add_argument("--update", action="store_true",
                        help="merge into --out's results.csv: the rows measured now replace those of the same device, size and method")
    args = parser.parse_args()

    sizes = [parse_size(s) for s in args.sizes.split(",")]
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" in devices and not torch.cuda.is_available():
        parser.error("--devices names cuda, but torch.cuda.is_available() is False")
    if args.threads:
        torch.set_num_threads(args.threads)
    wanted = [m for m in methods() if not args.methods or any(s in m.name for s in args.methods.split(","))]
    if not wanted:
        parser.error(f"--methods {args.methods!r} matches no row; rows: {[m.name for m in methods()]}")
    args.out.mkdir(parents=True, exist_ok=True)

    channels_last = use_channels_last(args.channels_last, args.precision)
    rows = []
    for device_name in devices:
        device = torch.device(device_name)
        limit = args.max_pairwise or (9409 if device.type == "cpu" else None)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        for h, w in sizes:
            for method in wanted:
                row = {"device": device_name, "precision": args.precision, "channels_last": channels_last, "device_name": label, "size": f"{h}x{w}", "positions": h * w,
                       "method": method.name, "time_ms": "", "peak_mb": ""}
                if not (method.pairwise and limit and h * w > limit):
                    seconds, mb = measure(method, (h, w), device, args.warmup, args.repeats, autocast_dtype(args.precision), channels_last)
                    row.update(time_ms=seconds * 1e3, peak_mb=mb)
                    print(f"{label} {h}x{w} {method.name}: {seconds * 1e3:.1f} ms, {mb:.1f} MB", flush=True)
                rows.append(row)

    if args.update:
        rows = merge_rows(read_rows(args.out / "results.csv"), rows)
    with open(args.out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))  # rows read back may lack newer columns
        writer.writeheader()
        writer.writerows(rows)
    table = write_table(rows, args.out / "results.md")
    goals = check_goals(rows)
    if goals:
        with open(args.out / "results.md", "a") as f:
            f.write("\nGoals (CPU 97x97):\n\n" + "".join(f"- {line}\n" for line in goals))
    print("\n" + table + "\n".join(goals))
    plot(rows, args.out / "results.png")
    print(f"wrote {args.out / 'results.csv'}, {args.out / 'results.md'}, {args.out / 'results.png'}")


if __name__ == "__main__":
    main()
