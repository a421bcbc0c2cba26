"""Key layouts of released ResNet weights, renamed to :class:`~segattn.models.backbone.ResNetBackbone` keys.

Only the stem differs between the layouts; ``layer1..layer4`` keys (``conv1``, ``bn1``, ...,
``downsample.0/1``) are the same everywhere:

- ``torchvision``: ``conv1`` (7x7), ``bn1`` -> ``stem.0``, ``stem.1``;
- ``v1c`` (open-mmlab ``resnet*_v1c``, mmseg backbones, segattn's deep stems): ``stem.{0,1,3,4,6,7}`` as they are;
- ``ccnet`` (official CCNet and MIT's deep-stem ``resnet101-imagenet.pth``): ``conv1 bn1 conv2 bn2 conv3 bn3``;
- ``encoding`` (PyTorch-Encoding / DANet): ``conv1.{0,1,3,4,6}`` and ``bn1`` (the third conv's BN).
"""
from __future__ import annotations

from typing import Mapping

from torch import Tensor

_STEM_RENAMES = {
    "torchvision": {"conv1.": "stem.0.", "bn1.": "stem.1."},
    "v1c": {},
    "segattn": {},
    "ccnet": {"conv1.": "stem.0.", "bn1.": "stem.1.", "conv2.": "stem.3.", "bn2.": "stem.4.",
              "conv3.": "stem.6.", "bn3.": "stem.7."},
    "encoding": {"conv1.0.": "stem.0.", "conv1.1.": "stem.1.", "conv1.3.": "stem.3.", "conv1.4.": "stem.4.",
                 "conv1.6.": "stem.6.", "bn1.": "stem.7."},
}
STEM_OF_LAYOUT = {"torchvision": "torchvision", "segattn": "torchvision", "v1c": "v1c", "ccnet": "ccnet", "encoding": "ccnet"}


def detect_layout(state: Mapping[str, Tensor]) -> str | None:
    """``torchvision`` | ``segattn`` (7x7 stem as ``stem.0/1``) | ``v1c`` | ``ccnet`` | ``encoding``, or None."""
    if "stem.0.weight" in state and "stem.6.weight" in state:
        return "v1c"
    if "stem.0.weight" in state and "stem.1.weight" in state:
        return "segattn"
    if "conv1.0.weight" in state and "conv1.6.weight" in state:
        return "encoding"
    if "conv1.weight" in state and "conv3.weight" in state and "conv2.weight" in state:
        return "ccnet"
    if "conv1.weight" in state:
        return "torchvision"
    return None


def rename_stem(key: str, layout: str) -> str:
    """One key of ``layout`` -> the ResNetBackbone key (layer keys are unchanged)."""
    for old, new in _STEM_RENAMES.get(layout, {}).items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


def to_backbone_keys(state: Mapping[str, Tensor], layout: str) -> dict[str, Tensor]:
    """All tensors of ``state`` under ResNetBackbone names; the ImageNet classifier ``fc.*`` is dropped."""
    return {rename_stem(k, layout): v for k, v in state.items() if not k.startswith("fc.")}
