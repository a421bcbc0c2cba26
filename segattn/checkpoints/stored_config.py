"""Configs read from a file (a checkpoint, an exported model) may name segattn's own classes only.

A ``_target_`` in ``conf/`` or on the command line keeps Hydra's full power; one stored in a file
someone shared is checked here before anything is imported or called with the file's arguments.
"""
from __future__ import annotations

import importlib
from typing import Any

from segattn.checkpoints.errors import CheckpointError

STORED_PACKAGES = ("segattn.models.", "segattn.data.", "segattn.losses.")  # models, data + transforms, losses
BUILT_SECTIONS = ("backbone", "head", "model", "data", "loss", "loss_per_output")  # what segattn builds from a file
STORED_FUNCTIONS = ("segattn.data.synthetic.generate_cityscapes", "segattn.data.context.generate_context")


def stored_target(target: Any, source: str) -> type:
    """The class (or built-in data generator) a stored ``_target_`` names; CheckpointError for anything else."""
    allowed = isinstance(target, str) and target.startswith(STORED_PACKAGES)
    module, _, name = str(target).rpartition(".")
    obj = None
    if allowed:
        try:
            obj = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            obj = None
    own = getattr(obj, "__module__", "").startswith("segattn.")  # not a class segattn merely imports
    if obj is None or not own or not (isinstance(obj, type) or target in STORED_FUNCTIONS):
        raise CheckpointError(
            f"{source}: refused: its stored config names _target_ {target!r}; a config read from a file may only name "
            f"segattn's own classes ({', '.join(p + '*' for p in STORED_PACKAGES)}); nothing was imported or run")
    return obj


def check_stored_config(config: Any, source: str) -> None:
    """CheckpointError when a ``_target_`` anywhere in the sections segattn builds from a file (model, data, loss)
    is not allowed. The run's other sections (trainer, callbacks, loggers, hydra) are a record, never built."""
    for name in BUILT_SECTIONS:
        if name in config:
            _check(config[name], source)


def _check(node: Any, source: str) -> None:
    if isinstance(node, dict) or hasattr(node, "items"):
        for key, value in node.items():
            if key == "_target_":
                stored_target(value, source)
            else:
                _check(value, source)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _check(value, source)
