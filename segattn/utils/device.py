"""Turn a device setting (``auto``, ``cpu``, ``cuda``, ``cuda:1``) into a torch device."""
from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device was asked for that this machine does not have."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` (the current CUDA device) when available, else ``cpu``; CUDA asked for
    without CUDA is a :class:`DeviceError`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} asked for, but no CUDA device is available: use cpu or auto")
    return device
