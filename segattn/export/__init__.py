"""Export a Segmentor to ONNX or TorchScript (dynamic batch, height and width) and run the ONNX file back."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from segattn.export.errors import ExportError
from segattn.export.metadata import model_metadata
from segattn.export.onnx import DEFAULT_OPSET, export_onnx
from segattn.export.torchscript import export_torchscript

FORMATS = ("onnx", "torchscript")


def export_model(model: nn.Module, path: str | Path, format: str = "onnx", opset: int = DEFAULT_OPSET,
                 example_size: tuple[int, int] = (256, 256)) -> Path:
    """Write ``model`` (``B x 3 x H x W`` ImageNet-normalised RGB -> ``B x K x H x W`` logits, any H, W) to
    ``path`` atomically, with its class names, palette, normalisation and ``align_corners`` as metadata.
    ``example_size`` is the size traced; ``opset`` applies to ONNX only."""
    if format not in FORMATS:
        raise ExportError(f"export format must be one of {list(FORMATS)}, got {format!r}")
    path = Path(path).expanduser()
    was_training = model.training
    model.eval()
    try:
        if format == "onnx":
            export_onnx(model, path, model_metadata(model), opset, example_size)
        else:
            export_torchscript(model, path, model_metadata(model), example_size)
    finally:
        model.train(was_training)
    return path


__all__ = ["FORMATS", "ExportError", "export_model"]
