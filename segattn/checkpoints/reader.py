"""The one reader of checkpoint files (segattn's own, the mmseg zoo, the official CCNet / DANet releases).

Nothing a file says runs code: the pickle is read by PyTorch's ``weights_only`` unpickler, which builds
tensors and plain data only. Two kinds of extra objects that real release files carry in ``meta`` are
let through by name: numpy arrays and scalars (rebuilt by numpy's own constructors) and the classes of
mmengine / mmcv / mmseg (message-hub history buffers and the like), which become inert placeholders
and are dropped. Any other global is refused before anything is called, naming it.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segattn.checkpoints.errors import CheckpointError

METADATA_PACKAGES = ("mmengine.", "mmcv.", "mmseg.")  # their objects in ``meta`` are read as placeholders, then dropped
_NUMPY_CORE = getattr(np, "_core", None) or np.core
NUMPY_GLOBALS = {  # numpy's pickle constructors (numpy 1 wrote numpy.core, numpy 2 numpy._core) and dtype classes
    **{f"numpy.{core}.multiarray.{name}": getattr(_NUMPY_CORE.multiarray, name)
       for core in ("core", "_core") for name in ("_reconstruct", "scalar")},
    "numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype,
    **{f"numpy.dtypes.{name}": getattr(np.dtypes, name) for name in dir(getattr(np, "dtypes", None)) if name.endswith("DType")},
}
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # how PyTorch's refusal names the global it would have imported
MAX_GLOBALS = 200  # distinct metadata classes one file may name (each is one more read of the file)


class Placeholder:
    """An object of an allowed metadata class: takes any arguments and state, keeps nothing, runs nothing."""

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def allowed_global(name: str):
    """The object the reader lets a pickle's global ``name`` stand for, or None (refused)."""
    if name in NUMPY_GLOBALS:
        return NUMPY_GLOBALS[name]
    return Placeholder if name.startswith(METADATA_PACKAGES) else None


def read_file(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict in ``path`` (tensors on the CPU, placeholders dropped); CheckpointError otherwise."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (expected a .pth / .ckpt checkpoint)")
    granted: dict[str, Any] = dict(NUMPY_GLOBALS)
    while True:
        try:
            with torch.serialization.safe_globals([(obj, name) for name, obj in granted.items()]):
                data = torch.load(path, map_location="cpu", weights_only=True)
            break
        except pickle.UnpicklingError as err:
            found = _GLOBAL.search(str(err))
            if found is None:
                raise _read_error(path, err) from None
            name = found.group(1).rstrip(".")
            obj = allowed_global(name)
            if obj is None or name in granted or len(granted) >= len(NUMPY_GLOBALS) + MAX_GLOBALS:
                raise CheckpointError(
                    f"{path}: refused: its pickle would import {name}, which is neither a tensor, plain data, a numpy "
                    f"array nor release metadata (mmengine / mmcv); nothing in the file was run") from None
            granted[name] = obj
        except Exception as err:  # a text file, a truncated zip, another pickle protocol error: not a checkpoint
            raise _read_error(path, err) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, expected a checkpoint dict")
    return drop_placeholders(data)


def drop_placeholders(value):
    """``value`` with every :class:`Placeholder` removed from its dicts, lists and tuples (recursively)."""
    if isinstance(value, dict):
        kept = {k: drop_placeholders(v) for k, v in value.items() if not isinstance(v, Placeholder)}
        return type(value)(kept) if type(value) is not dict else kept
    if isinstance(value, (list, tuple)):
        kept = [drop_placeholders(v) for v in value if not isinstance(v, Placeholder)]
        return kept if isinstance(value, list) else tuple(kept)
    return value


def _read_error(path: Path, err: Exception) -> CheckpointError:
    """One line for a file PyTorch cannot read: truncated / damaged, or not a checkpoint at all."""
    with open(path, "rb") as f:
        zip_start = f.read(4) == b"PK\x03\x04"  # torch.save's zip format, whose index sits at the end
    text = str(err).splitlines()[0] if str(err) else ""
    if (zip_start and not zipfile.is_zipfile(path)) or isinstance(err, EOFError) or "central directory" in text:
        return CheckpointError(f"{path} is truncated or damaged ({type(err).__name__}); download it again")
    return CheckpointError(f"{path} is not a PyTorch checkpoint (expected a file written by torch.save; "
                           f"reading it failed with {type(err).__name__})")
