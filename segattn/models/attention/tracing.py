"""Whether a module's forward is being recorded (ONNX export, ``torch.jit.trace`` or scripting)."""
import torch


def recording() -> bool:
    """True while an exporter records the forward: blocks then take their standard-op paths, since a
    custom autograd function or a Python loop over the input's sizes would be frozen at the export size."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.jit.is_scripting()
