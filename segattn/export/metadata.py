"""What an exported file carries besides the graph: class names, palette, normalisation, align_corners."""
from __future__ import annotations

import json

from torch import nn

KEYS = ("class_names", "palette", "normalization", "align_corners", "num_classes")


def model_metadata(model: nn.Module) -> dict[str, str]:
    """``{key: JSON string}`` of the model's metadata (the ONNX ``metadata_props`` / TorchScript extra files)."""
    return {key: json.dumps(getattr(model, key, None)) for key in KEYS}


def read_metadata(props: dict[str, str]) -> dict:
    """The inverse of :func:`model_metadata` (missing keys: None)."""
    return {key: json.loads(props[key]) if key in props else None for key in KEYS}
