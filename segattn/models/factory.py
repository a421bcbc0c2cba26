"""``create_model`` and ``list_models``: a Segmentor from Python with the defaults of ``conf/head/*.yaml``
and ``conf/backbone/*.yaml`` (read as plain YAML; no Hydra)."""
from __future__ import annotations

import inspect
from typing import Any

from omegaconf import OmegaConf

from segattn.configs import CONFIG_DIR
from segattn.models.build import build_segmentor
from segattn.models.segmentor import Segmentor

MODEL_KEYS = tuple(p for p in inspect.signature(Segmentor).parameters if p not in ("backbone", "head", "num_classes"))


def list_models() -> dict[str, list[str]]:
    """``{"heads": [...], "backbones": [...]}``: the names ``create_model`` takes (the config files' names)."""
    return {group: sorted(p.stem for p in (CONFIG_DIR / group.rstrip("s")).glob("*.yaml"))
            for group in ("heads", "backbones")}


def _defaults(group: str, name: str) -> dict[str, Any]:
    path = CONFIG_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown {group} {name!r}: expected one of {list_models()[group + 's']}")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def create_model(head: str, backbone: str = "resnet50", num_classes: int = 19, class_names=None, palette=None,
                 **options) -> Segmentor:
    """A fresh Segmentor (train mode) of ``head`` on ``backbone``: ``B x 3 x H x W`` ImageNet-normalised RGB
    -> ``B x num_classes x H x W`` logits.

    ``options`` set any key of the head's or the backbone's config file (``recurrence=1``, ``output_stride=16``,
    ``attention="cbam"``, ``pretrained="imagenet"``) or of the Segmentor (``aux_weight``, ``align_corners``,
    ``normalization``, ``head_init``). ``class_names`` default to ``class_0 ...``; the palette to none
    (``predict`` then colours with a fixed one).
    """
    config = {"head": _defaults("head", head), "backbone": _defaults("backbone", backbone), "model": {}}
    for key, value in options.items():
        groups = [g for g in ("head", "backbone") if key in config[g] and not key.startswith("_")]
        groups += ["model"] if key in MODEL_KEYS else []
        if len(groups) != 1:
            valid = sorted({k for g in ("head", "backbone") for k in config[g] if not k.startswith("_")} | set(MODEL_KEYS))
            found = f"it is a key of {groups}" if groups else "no such key"
            raise ValueError(f"create_model({head!r}, {backbone!r}): option {key!r} is ambiguous or unknown "
                             f"({found}); expected one of {valid}")
        config[groups[0]][key] = value
    model = build_segmentor(config, num_classes)
    if class_names is not None:
        if len(class_names) != num_classes:
            raise ValueError(f"create_model: expected {num_classes} class_names, found {len(class_names)}")
        model.class_names = list(class_names)
    if palette is not None:
        model.palette = [list(c) for c in palette]
    return model
