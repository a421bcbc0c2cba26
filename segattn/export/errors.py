"""The one exception of export: a model, option or file that cannot be exported (the message says why)."""
import importlib


class ExportError(ValueError):
    """A model or setting that cannot be exported, or an exported file that cannot be read back."""


def require(module: str):
    """Import an optional dependency of the ``[export]`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(f"ONNX export and ONNX Runtime need {module}: pip install 'segattn[export]'") from None
