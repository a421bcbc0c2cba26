"""Segmentation heads: ``Head(in_channels, num_classes, **kwargs)``, ``forward(x) -> {"out": logits, ...}``."""
from segattn.models.heads.fcn import FCNHead

__all__ = ["FCNHead"]
