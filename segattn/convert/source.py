"""Read a source file: a checkpoint dict of tensors (mmseg zoo, official CCNet/DANet, segattn, bare state dict)."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from segattn.convert.errors import ConversionError


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The unpickled dict; raises ConversionError for a missing, truncated or non-checkpoint file.

    mmseg zoo files pickle their ``meta`` with numpy/mmengine objects, so the safe loader is tried
    first and the full unpickler only for such files (load only files you trust).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConversionError(f"{path}: no such file (expected a .pth/.ckpt checkpoint)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # not plain tensors: numpy arrays / classes in "meta"
        data = _load_full(path)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise _read_error(path, err) from None
    if not isinstance(data, dict):
        raise ConversionError(f"{path} holds a {type(data).__name__}, expected a checkpoint dict of tensors")
    return data


def _load_full(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # pickle / zip errors of many kinds
        raise _read_error(path, err) from None


def _read_error(path: Path, err: Exception) -> ConversionError:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    with open(path, "rb") as f:
        zip_start = f.read(4) == b"PK\x03\x04"  # torch.save's zip format, whose index sits at the end
    truncated = (zip_start and not zipfile.is_zipfile(path)) or isinstance(err, EOFError) or "truncated" in text
    if truncated or "central directory" in text:
        return ConversionError(f"{path} is truncated or damaged ({type(err).__name__}: {text}); download it again")
    return ConversionError(f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {text})")


def is_segattn_checkpoint(data: dict) -> bool:
    """A segattn checkpoint (trained or converted) holds ``state_dict``, ``config`` and ``class_names``."""
    return all(key in data for key in ("state_dict", "config", "class_names"))


def state_dict_of(data: dict, path: str | Path) -> dict[str, Tensor]:
    """The tensors of ``data`` (``state_dict`` / ``model`` / the dict itself), ``module.`` prefixes removed."""
    state = data
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ConversionError(f"{path} holds no tensors (top-level keys: {sorted(data)[:8]}); expected a model state dict")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in tensors.items()}
