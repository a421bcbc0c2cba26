"""The precision each device computes fastest: ``auto`` -> ``bf16-mixed``, ``16-mixed`` or ``32-true``.

``bf16-mixed`` where the hardware has native bf16 arithmetic (CPUs with AVX-512 BF16 or AMX, CUDA
GPUs of compute capability 8.0 and up), ``16-mixed`` on older CUDA GPUs, ``32-true`` elsewhere.
The names are Lightning's ``Trainer(precision=...)`` values.
"""
from __future__ import annotations

import contextlib
import functools
import platform
import subprocess
from pathlib import Path
from typing import Optional

import torch

AUTOCAST_DTYPES = {"32-true": None, "16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}
INFERENCE_PRECISIONS = ("auto", *AUTOCAST_DTYPES)


BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 AVX-512 BF16 and AMX; Arm's BF16 extension


@functools.lru_cache(maxsize=None)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (:data:`BF16_CPU_FLAGS` in /proc/cpuinfo; sysctl on macOS)."""
    if platform.system() == "Darwin":
        query = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], capture_output=True, text=True)
        return query.stdout.strip() == "1"
    try:
        return cpuinfo_has_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def cpuinfo_has_bf16(cpuinfo: str) -> bool:
    """Whether the ``flags`` (x86) or ``Features`` (Arm) lines of a /proc/cpuinfo text name a bf16 unit."""
    for line in cpuinfo.splitlines():
        key, _, values = line.partition(":")
        if key.strip() in ("flags", "Features") and BF16_CPU_FLAGS & set(values.split()):
            return True
    return False


def fastest_precision(device: torch.device | str) -> str:
    """The mixed precision ``device`` (``cpu``, ``cuda``, ``cuda:1``, ...) computes fastest, as a Lightning name."""
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16-mixed" if torch.cuda.get_device_capability(device) >= (8, 0) else "16-mixed"
    if device.type == "cpu":
        return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    return "32-true"


def resolve_precision(precision, device: torch.device | str) -> str:
    """``"auto"`` -> :func:`fastest_precision` of ``device``; any other value is returned as given."""
    return fastest_precision(device) if str(precision) == "auto" else str(precision)


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of a resolved ``precision`` (None for ``32-true``); other names are refused."""
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {list(INFERENCE_PRECISIONS)}, got {precision!r}")
    return AUTOCAST_DTYPES[precision]


def inference_autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast on ``device`` at a resolved ``precision``, or a no-op for ``32-true``."""
    dtype = autocast_dtype(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def use_channels_last(setting, precision: str) -> bool:
    """Whether to run the model channels-last: ``auto`` under mixed bf16/fp16 precision, else ``setting``
    (a bool, or ``"true"`` / ``"false"`` as a command line gives it).

    Measured on a 2-core AMD EPYC (AVX-512 BF16), ResNet-50-D8 + CCNet, 2 x 256², bf16-mixed: a
    training step at 1.10 img/s channels-last vs 1.01 NCHW, inference 268 vs 293 ms per image; in fp32
    NCHW is the faster one on the CPU (mkldnn's channels-last convolution backward is slower there).
    On CUDA, channels-last is what the tensor-core convolutions of mixed precision want.
    """
    text = str(setting).lower()
    if text == "auto":
        return precision in ("bf16-mixed", "16-mixed")
    if text not in ("true", "false"):
        raise ValueError(f"channels_last must be auto, true or false, got {setting!r}")
    return text == "true"
