"""Segmentation heads: ``Head(in_channels, num_classes, **kwargs)``, ``forward(x) -> {"out": logits, ...}``."""
from segattn.models.heads.ccnet import RCCAHead
from segattn.models.heads.danet import DANetHead
from segattn.models.heads.dnl import DNLHead
from segattn.models.heads.emanet import EMAHead
from segattn.models.heads.fcn import FCNHead
from segattn.models.heads.gcnet import GCHead
from segattn.models.heads.isanet import ISAHead
from segattn.models.heads.nonlocal_head import NonLocalHead

__all__ = ["DANetHead", "DNLHead", "EMAHead", "FCNHead", "GCHead", "ISAHead", "NonLocalHead", "RCCAHead"]
