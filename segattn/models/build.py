"""Build a Segmentor from the ``backbone``, ``head`` and ``model`` sections of a run config."""
from __future__ import annotations

from typing import Mapping

from hydra.utils import instantiate

from segattn.models.segmentor import Segmentor

TRAINING_ONLY_KEYS = ("init_from", "compile", "channels_last")  # model.* keys read by train.py, not by the Segmentor


def build_segmentor(config: Mapping, num_classes: int) -> Segmentor:
    """``config`` holds ``backbone`` (``_target_`` config), ``head`` (partial) and ``model`` (aux, resize, input;
    the training-only keys are read by train.py)."""
    model = {k: v for k, v in dict(config["model"]).items() if k not in TRAINING_ONLY_KEYS}
    return Segmentor(instantiate(config["backbone"]), instantiate(config["head"]), num_classes, **model)
