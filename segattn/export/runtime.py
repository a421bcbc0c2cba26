"""An exported ONNX file run by ONNX Runtime, called like the Segmentor it came from."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from segattn.export.errors import ExportError, require
from segattn.export.metadata import read_metadata


class OnnxRuntimeModel:
    """``B x 3 x H x W`` ImageNet-normalised RGB -> ``B x K x H x W`` logits (float32, on the input's device),
    with the ``class_names``, ``palette``, ``normalization``, ``align_corners`` and ``num_classes`` of the
    model that was exported. Runs on ONNX Runtime's CPU provider."""

    training = False

    def __init__(self, path: str | Path):
        onnxruntime = require("onnxruntime")
        path = Path(path).expanduser()
        if not path.is_file():
            raise ExportError(f"{path}: no such ONNX file (expected a file written by segattn-export format=onnx)")
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise ExportError(f"{path} is not a readable ONNX model ({type(err).__name__}: {str(err).splitlines()[0]})") from None
        meta = read_metadata(self.session.get_modelmeta().custom_metadata_map)
        if meta["num_classes"] is None:
            raise ExportError(f"{path} carries no segattn metadata (num_classes, class_names): export it with segattn-export")
        self.path = path
        self.class_names, self.palette = meta["class_names"], meta["palette"]
        self.normalization, self.align_corners, self.num_classes = meta["normalization"], meta["align_corners"], meta["num_classes"]

    def __call__(self, x: Tensor) -> Tensor:
        logits = self.session.run(None, {"image": np.ascontiguousarray(x.detach().float().cpu().numpy())})[0]
        return torch.from_numpy(logits).to(x.device)

    def eval(self) -> "OnnxRuntimeModel":
        return self
