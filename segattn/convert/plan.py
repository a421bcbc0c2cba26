"""What a format reader returns: the segattn config it inferred and the renamed tensors."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from segattn.convert.errors import ConversionError


@dataclass
class Plan:
    """``backbone`` / ``head`` / ``model``: config values (``head["name"]`` is the ``head=`` group);
    ``state``: tensors under Segmentor keys (``origin``: their source keys); ``unmatched``: source keys no rule took; ``notes``:
    settings that the tensors do not show and were taken from the release (printed to the user)."""

    format: str
    backbone: dict
    head: dict
    model: dict
    state: dict[str, Tensor]
    unmatched: list[str]
    num_classes: int
    notes: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)  # segattn key -> source key
    file_name: str = ""


def conv_bn(src: str, dst: str) -> list[tuple[str, str]]:
    """mmcv ``ConvModule`` keys (``src.conv.*``, ``src.bn.*``) -> segattn ``conv_bn_relu`` (``dst.0.*``, ``dst.1.*``)."""
    return [(f"{src}.conv.", f"{dst}.0."), (f"{src}.bn.", f"{dst}.1.")]


def out_channels(state: dict[str, Tensor], key: str) -> int:
    """Output channels of the conv weight ``key``; ConversionError when the file has no such tensor."""
    if key not in state:
        raise ConversionError(f"it has no {key} (a tensor that layout always holds)")
    return int(state[key].shape[0])
