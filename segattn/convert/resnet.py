"""Infer a ResNetBackbone config (depth, stem, widths) from backbone tensors under segattn names."""
from __future__ import annotations

import re
from typing import Mapping

from torch import Tensor

from segattn.convert.errors import ConversionError

_DEPTHS = {("basic", (2, 2, 2, 2)): 18, ("basic", (3, 4, 6, 3)): 34,
           ("bottleneck", (3, 4, 6, 3)): 50, ("bottleneck", (3, 4, 23, 3)): 101}


def infer_backbone(state: Mapping[str, Tensor], deep_stem_name: str) -> dict:
    """``depth``, ``stem``, ``stem_channels``, ``base_channels`` of ``backbone.*`` tensors (segattn keys).

    A 3x3 three-conv stem is called ``deep_stem_name`` (``v1c`` for mmseg, ``ccnet`` for CCNet/DANet);
    the widths come from the stem's last conv and layer1's first conv.
    """
    blocks = [0, 0, 0, 0]
    for key in state:
        match = re.match(r"backbone\.layer([1-4])\.(\d+)\.", key)
        if match:
            stage, index = int(match[1]) - 1, int(match[2])
            blocks[stage] = max(blocks[stage], index + 1)
    kind = "bottleneck" if "backbone.layer1.0.conv3.weight" in state else "basic"
    depth = _DEPTHS.get((kind, tuple(blocks)))
    if depth is None:
        raise ConversionError(
            f"backbone has {kind} blocks {tuple(blocks)} per stage; supported ResNets: "
            + ", ".join(f"{d} ({k} {b})" for (k, b), d in _DEPTHS.items())
        )
    if "backbone.stem.6.weight" in state:
        stem, stem_channels = deep_stem_name, state["backbone.stem.6.weight"].shape[0]
    elif "backbone.stem.0.weight" in state:
        stem, stem_channels = "torchvision", state["backbone.stem.0.weight"].shape[0]
    else:
        raise ConversionError("backbone has no stem tensors (expected backbone.stem.0.weight)")
    return {"depth": depth, "stem": stem, "stem_channels": int(stem_channels),
            "base_channels": int(state["backbone.layer1.0.conv1.weight"].shape[0])}
