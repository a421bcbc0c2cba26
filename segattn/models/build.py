"""Build a Segmentor from the ``backbone``, ``head`` and ``model`` sections of a run config."""
from __future__ import annotations

from typing import Mapping

from hydra.utils import instantiate

from segattn.models.segmentor import Segmentor


def build_segmentor(config: Mapping, num_classes: int) -> Segmentor:
    """``config`` holds ``backbone`` (``_target_`` config), ``head`` (partial) and ``model`` (aux settings;
    its ``compile`` flag is for the trainer, not the model)."""
    options = {key: value for key, value in config["model"].items() if key != "compile"}
    return Segmentor(instantiate(config["backbone"]), instantiate(config["head"]), num_classes, **options)
