"""The ``eval`` settings of ``evaluate.py``: the backend, the data config and the report folder (the inference
passes are :mod:`segattn.inference.pipeline`'s, shared with ``segattn-predict``)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from segattn.inference.pipeline import InferenceSettingError, check_passes, fill_passes

BACKENDS = ("pytorch", "onnxruntime")


class EvaluationError(InferenceSettingError):
    """A checkpoint, dataset or setting the user gave cannot be evaluated (message says why)."""


def apply_recipe(ev: DictConfig, recipe: Optional[dict]) -> None:
    """Fill the ``eval`` pass keys left null with the checkpoint's recipe (its config's ``eval``), else the defaults."""
    for key, value in fill_passes(ev, recipe).items():
        ev[key] = value


def check_settings(ev: DictConfig) -> None:
    """Raise one message for a malformed ``eval`` setting (pass keys still null are filled later from the recipe)."""
    try:
        check_passes(ev, prefix="eval.")
    except InferenceSettingError as err:
        raise EvaluationError(str(err)) from None
    backend = ev.get("backend", "pytorch")
    if backend not in BACKENDS:
        raise EvaluationError(f"eval.backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "onnxruntime" and not ev.get("model"):
        raise EvaluationError("eval.backend=onnxruntime needs eval.model=<file.onnx> (written by segattn-export)")


def data_config(saved: dict, given: DictConfig) -> DictConfig:
    """The checkpoint's data config, replaced by a chosen ``data=<group>``, updated by ``data.KEY=VALUE``."""
    given = {k: v for k, v in OmegaConf.to_container(given, resolve=True).items() if v is not None}
    if "_target_" in given:
        return OmegaConf.create(given)
    return OmegaConf.merge(OmegaConf.create(saved), given)


def default_out(ckpt_path: Path, ev: DictConfig) -> Path:
    """``<run folder>/eval/<ckpt stem>_<split>_<mode>[_ms][_flip][_onnxruntime]``."""
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    name = f"{ckpt_path.stem}_{ev.split}_{ev.mode}"
    name += ("_ms" if len(ev.scales) > 1 else "") + ("_flip" if ev.flip else "")
    name += "_onnxruntime" if ev.get("backend", "pytorch") == "onnxruntime" else ""
    return run / "eval" / name
