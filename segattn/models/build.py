"""Build a Segmentor from the ``backbone``, ``head`` and ``model`` sections of a run config, without Hydra.

The sections are the ``conf/backbone/*.yaml`` and ``conf/head/*.yaml`` dicts (``_target_`` names the
class, ``_partial_`` marks the head, built once the backbone's width is known); Hydra configs
instantiate the same classes.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf

from segattn.models.segmentor import Segmentor

TRAINING_ONLY_KEYS = ("init_from", "init_from_other_normalization", "compile", "channels_last")  # model.* keys read by train.py, not by the Segmentor


def import_class(target: str) -> type:
    """``"package.module.Class"`` -> the class."""
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"_target_ must name an importable class, e.g. segattn.models.heads.fcn.FCNHead; got {target!r}") from None


def plain(section: Mapping) -> dict[str, Any]:
    """A config section (DictConfig or dict) as a plain dict with plain lists."""
    return OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else dict(section)


def from_section(section: Mapping):
    """The object a ``_target_`` section describes (a ``functools.partial`` when ``_partial_`` is true)."""
    args = plain(section)
    cls, partial = import_class(args.pop("_target_")), args.pop("_partial_", False)
    return functools.partial(cls, **args) if partial else cls(**args)


def build_segmentor(config: Mapping, num_classes: int) -> Segmentor:
    """``config`` holds ``backbone`` (``_target_`` section), ``head`` (partial) and ``model`` (aux, resize, input;
    the training-only keys are read by train.py)."""
    model = {k: v for k, v in plain(config["model"]).items() if k not in TRAINING_ONLY_KEYS}
    return Segmentor(from_section(config["backbone"]), from_section(config["head"]), num_classes, **model)
