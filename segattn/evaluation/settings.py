"""The ``eval`` settings of ``evaluate.py``: checks with one message each, the recipe's defaults, the data
config and the report folder."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from segattn.utils.precision import INFERENCE_PRECISIONS

RECIPE_DEFAULTS = {"mode": "whole", "crop_size": [769, 769], "stride": [513, 513]}
BACKENDS = ("pytorch", "onnxruntime")


class EvaluationError(ValueError):
    """A checkpoint, dataset or setting the user gave cannot be evaluated (message says why)."""


def _positive_list(value, length: Optional[int] = None) -> bool:
    return (OmegaConf.is_list(value) and len(value) > 0 and (length is None or len(value) == length)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value))


def apply_recipe(ev: DictConfig, recipe: Optional[dict]) -> None:
    """Fill the ``eval`` keys left null with the checkpoint's recipe (its config's ``eval``), else the defaults."""
    for key, default in RECIPE_DEFAULTS.items():
        if ev[key] is None:
            value = (recipe or {}).get(key)
            ev[key] = value if value is not None else default


def check_settings(ev: DictConfig, prefix: str = "eval.") -> None:
    """Raise one message for a malformed ``eval`` setting (keys still null are filled later from the recipe);
    ``prefix`` is how the messages name the keys (``segattn-predict`` has them at the top level)."""
    if ev.mode is not None and ev.mode not in ("whole", "slide"):
        raise EvaluationError(f"{prefix}mode must be whole or slide, got {ev.mode!r}")
    if not _positive_list(ev.scales):
        raise EvaluationError(
            f"{prefix}scales must be a non-empty list of positive numbers, e.g. [0.75,1.0,1.25]; got {ev.scales}"
        )
    if ev.precision not in INFERENCE_PRECISIONS:
        raise EvaluationError(f"{prefix}precision must be one of {list(INFERENCE_PRECISIONS)}, got {ev.precision!r}")
    backend = ev.get("backend", "pytorch")
    if backend not in BACKENDS:
        raise EvaluationError(f"{prefix}backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "onnxruntime" and not ev.get("model"):
        raise EvaluationError(f"{prefix}backend=onnxruntime needs {prefix}model=<file.onnx> (written by segattn-export)")
    for key in ("crop_size", "stride"):
        if ev.mode == "slide" and ev[key] is not None and not _positive_list(ev[key], 2):
            raise EvaluationError(f"{prefix}{key} must be two positive integers [h,w], e.g. [769,769]; got {ev[key]}")
    if ev.mode == "slide" and None not in (ev.stride, ev.crop_size) and any(s > c for s, c in zip(ev.stride, ev.crop_size)):
        raise EvaluationError(f"{prefix}stride must not exceed {prefix}crop_size (windows would leave pixels unseen): "
                              f"got stride {list(ev.stride)} with crop_size {list(ev.crop_size)}")


def passes(ev: DictConfig) -> dict:
    """The inference passes of ``ev`` as :class:`segattn.inference.predictor.Predictor` arguments."""
    return dict(precision=ev.precision, mode=ev.mode, crop_size=list(ev.crop_size), stride=list(ev.stride),
                scales=list(ev.scales), flip=bool(ev.flip))


def data_config(saved: dict, given: DictConfig) -> DictConfig:
    """The checkpoint's data config, replaced by a chosen ``data=<group>``, updated by ``data.KEY=VALUE``."""
    given = {k: v for k, v in OmegaConf.to_container(given, resolve=True).items() if v is not None}
    if "_target_" in given:
        return OmegaConf.create(given)
    return OmegaConf.merge(OmegaConf.create(saved), given)


def default_out(ckpt_path: Path, ev: DictConfig) -> Path:
    """``<run folder>/eval/<ckpt stem>_<split>_<mode>[_ms][_flip][_onnxruntime]`` (or ``demo_<folder>``)."""
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    if ev.images:
        return run / "eval" / f"demo_{Path(ev.images).name}"
    name = f"{ckpt_path.stem}_{ev.split}_{ev.mode}"
    name += ("_ms" if len(ev.scales) > 1 else "") + ("_flip" if ev.flip else "")
    name += "_onnxruntime" if ev.get("backend", "pytorch") == "onnxruntime" else ""
    return run / "eval" / name
