"""TorchScript export: a trace (criss-cross takes its standard-op path), sizes left symbolic."""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from segattn.export.errors import ExportError
from segattn.utils.io import atomic_path


def export_torchscript(model: nn.Module, path: Path, metadata: dict[str, str], example_size) -> None:
    """Trace ``model`` (eval mode) at ``1 x 3 x example_size``; ``metadata`` goes in as extra files
    (``torch.jit.load(path, _extra_files={"class_names": ""})`` reads them back)."""
    device = next(model.parameters()).device
    example = torch.zeros(1, 3, *example_size, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the blocks' input checks, constant while tracing
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates trace and save (README: Export)
        try:
            traced = torch.jit.trace(model, example, check_trace=False)
        except Exception as err:
            raise ExportError(f"export: TorchScript tracing failed: {type(err).__name__}: {str(err).splitlines()[0]}") from None
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files=metadata)
