"""segattn's checkpoint format: ``state_dict`` (Lightning's ``model.*`` keys), ``config``, ``class_names``
[, ``palette``, ``converted_from``]; run folders; the tensors of any checkpoint dict."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from torch import Tensor

from segattn.checkpoints.errors import CheckpointError
from segattn.checkpoints.reader import read_file
from segattn.checkpoints.stored_config import check_stored_config

SEGATTN_KEYS = ("state_dict", "config", "class_names")
BEST_THEN_LAST = ("best.ckpt", "last.ckpt")  # what a run folder stands for when a model is used
LAST = ("last.ckpt",)  # what a run folder stands for when its training is continued


def resolve_checkpoint(ckpt: str | Path, prefer: Sequence[str] = BEST_THEN_LAST, key: str = "ckpt") -> Path:
    """A checkpoint file, or a training run folder -> the first of its ``checkpoints/<prefer>`` that exists."""
    path = Path(ckpt).expanduser()
    if path.is_dir():
        found = next((c for c in (path / "checkpoints" / n for n in prefer) if c.is_file()), None)
        if found is None:
            raise CheckpointError(f"{key}={ckpt}: a folder without {' or '.join('checkpoints/' + n for n in prefer)} "
                                  f"(expected a .ckpt file or a training run folder)")
        return found
    if not path.is_file():
        raise CheckpointError(f"{key}={ckpt}: no such file or folder (expected a .ckpt file or a training run folder)")
    return path


def is_segattn_checkpoint(data: dict) -> bool:
    """A segattn checkpoint (trained or converted) holds ``state_dict``, ``config`` and ``class_names``."""
    return all(key in data for key in SEGATTN_KEYS)


def checked_segattn(data: dict, path: str | Path) -> dict:
    """``data`` when it is a segattn checkpoint whose stored config names segattn's classes only."""
    if not is_segattn_checkpoint(data):
        missing = [key for key in SEGATTN_KEYS if key not in data]
        raise CheckpointError(f"{path} is not a segattn checkpoint: missing {missing}, found keys {sorted(data)[:8]}")
    check_stored_config(data["config"], str(path))
    return data


def read_segattn_checkpoint(path: str | Path) -> dict:
    """A segattn checkpoint file, read safely, its stored config checked."""
    return checked_segattn(read_file(path), path)


def model_weights(ckpt: dict) -> dict[str, Tensor]:
    """The Segmentor's tensors of a segattn checkpoint (Lightning's ``model.`` prefix removed).

    Runs of earlier versions with ``deep_stem=true`` nested the stem one level deeper
    (``backbone.stem.0.<i>``); their keys are moved to today's flat ``backbone.stem.<i>``.
    """
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    nested = "backbone.stem.0."
    if any(k.startswith(nested + "0.") for k in state):
        state = {("backbone.stem." + k[len(nested):] if k.startswith(nested) else k): v for k, v in state.items()}
    return state


def state_dict_of(data: dict, path: str | Path) -> dict[str, Tensor]:
    """The tensors of any checkpoint dict (``state_dict`` / ``model`` / the dict itself), ``module.`` removed."""
    state = data
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors (top-level keys: {sorted(data)[:8]}); expected a model state dict")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in tensors.items()}
