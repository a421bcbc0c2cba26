"""Measuring helpers shared by the benchmark scripts: peak tensor memory, median time, FLOPs, matmul peak."""
from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Mapping, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from segattn.constants import IGNORE_INDEX


def machine_name(device: torch.device) -> str:
    """The GPU's name, or the CPU model and the thread count torch uses."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if cpuinfo.exists() else platform.processor()
    return f"{model or 'CPU'}, {torch.get_num_threads()} threads"


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on a CUDA ``device``; no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_bytes(step: Callable[[], None], device: torch.device) -> int:
    """Peak of the running sum of the profiler's alloc/free records on ``device`` during ``step``."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities, profile_memory=True) as prof:
        step()
    kind = DeviceType.CUDA if cuda else DeviceType.CPU
    # the raw records (``prof.events()`` folds them into the ops that made them)
    records = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]" and e.device_type() == kind]
    running = peak = 0
    for record in sorted(records, key=lambda e: e.start_ns()):
        running += record.nbytes()
        peak = max(peak, running)
    return peak


def median_seconds(step: Callable[[], None], device: torch.device, warmup: int, repeats: int,
                   max_warmup: Optional[int] = None, tolerance: float = 0.05) -> float:
    """Median wall time of ``repeats`` calls of ``step`` after a warm-up (CUDA synchronised).

    The warm-up makes ``warmup`` untimed calls, then more until two in a row agree to ``tolerance``
    (relative), at most ``max_warmup`` in all (default ``warmup``: a fixed warm-up): the first calls
    of a fresh model pay for allocator growth, kernel selection and caches.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    times = [seconds(step, device) for _ in range(warmup)]
    while len(times) < max(max_warmup or 0, warmup) and not _steady(times, tolerance):
        times.append(seconds(step, device))
    return statistics.median(seconds(step, device) for _ in range(repeats))


def seconds(step: Callable[[], None], device: torch.device) -> float:
    """Wall time of one call of ``step`` (CUDA synchronised before and after)."""
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - start


def _steady(times: list[float], tolerance: float) -> bool:
    """Whether the last two of ``times`` agree to ``tolerance`` (relative to the smaller)."""
    return len(times) >= 2 and abs(times[-1] - times[-2]) <= tolerance * min(times[-2:])


def _sdpa_cpu_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _sdpa_cpu_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# the CPU flash-attention kernels are missing from torch's FLOP formulas (counted as 0 otherwise)
_EXTRA_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_cpu_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_cpu_backward_flops,
}


def count_flops(fn: Callable[[], None]) -> dict[str, int]:
    """FLOPs (multiply-adds count 2) of one call of ``fn``: ``{"Global": total, "<Module>.<child>": ...}``.

    Per-module totals reach two levels of the modules called, e.g. ``"Segmentor.head"``.
    """
    counter = FlopCounterMode(depth=2, display=False, custom_mapping=_EXTRA_FORMULAS)
    with counter:
        fn()
    return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def matmul_flops_per_second(device: torch.device, dtype: torch.dtype = torch.float32, size: int = 2048,
                            repeats: int = 5) -> float:
    """Measured throughput of a ``size x size`` matmul in ``dtype`` (FLOP/s): the machine's practical peak."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = median_seconds(lambda: torch.mm(a, b), device, warmup=2, repeats=repeats)
    return 2 * size**3 / seconds


def training_step(model: nn.Module, images: Tensor, masks: Tensor, optimizer: torch.optim.Optimizer,
                  amp_dtype: Optional[torch.dtype] = None) -> Callable[[], None]:
    """One SGD step of a Segmentor in training mode: ``forward_train``, weighted cross-entropy (ignore 255),
    backward, optimizer step.

    ``images``: ``B x 3 x H x W``, ``masks``: ``B x H x W`` long. ``amp_dtype`` runs the forward under
    autocast (fp16 with a gradient scaler).
    """
    device = images.device
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    weights: Mapping[str, float] = model.loss_weights

    def step() -> None:
        model.train()
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            outputs = model.forward_train(images)
            loss = sum(w * F.cross_entropy(outputs[k].float(), masks, ignore_index=IGNORE_INDEX) for k, w in weights.items())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step
