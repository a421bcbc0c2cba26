"""ONNX export (PyTorch's TorchScript-based exporter) with symbolic batch, height and width."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from segattn.export.errors import ExportError, require
from segattn.models.attention.non_local import NonLocal2d
from segattn.utils.io import atomic_path

DEFAULT_OPSET = 17
SDPA_OPSET = 14  # first opset with aten::scaled_dot_product_attention
DYNAMIC = {0: "batch", 2: "height", 3: "width"}


def check_onnx_options(model: nn.Module, opset: int) -> None:
    """Refuse, in one message, an option the ONNX exporter cannot write at ``opset``."""
    fused = [name for name, m in model.named_modules()
             if isinstance(m, NonLocal2d) and m.use_sdpa and m.mode in ("gaussian", "embedded_gaussian")]
    if fused and opset < SDPA_OPSET:
        raise ExportError(f"export: {fused[0]} uses scaled_dot_product_attention (head use_sdpa=true), which ONNX "
                          f"has from opset {SDPA_OPSET}; got opset {opset}: export with opset>={SDPA_OPSET}, or "
                          f"build the head with use_sdpa=false")


def export_onnx(model: nn.Module, path: Path, metadata: dict[str, str], opset: int, example_size) -> None:
    """Trace ``model`` (eval mode) at ``1 x 3 x example_size`` and write ``path`` with ``metadata`` props."""
    onnx = require("onnx")
    check_onnx_options(model, opset)
    device = next(model.parameters()).device
    example = torch.zeros(1, 3, *example_size, device=device)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the blocks' input checks, constant while tracing
        try:
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": DYNAMIC, "logits": DYNAMIC})
        except Exception as err:  # exporter errors of every kind: say which model part failed
            raise ExportError(f"export: ONNX exporter failed at opset {opset}: {type(err).__name__}: "
                              f"{str(err).splitlines()[0]}") from None
        graph = onnx.load(str(tmp))
        for key, value in metadata.items():
            graph.metadata_props.add(key=key, value=value)
        onnx.save(graph, str(tmp))
