"""Segmentation heads: ``Head(in_channels, num_classes, **kwargs)``, ``forward(x) -> {"out": logits, ...}``; a head
with ``uses_layer3 = True`` also takes ``layer3_channels`` and is called as ``forward(x, layer3)``."""
from segattn.models.heads.ann import ANNHead
from segattn.models.heads.ccnet import RCCAHead
from segattn.models.heads.danet import DANetHead
from segattn.models.heads.dnl import DNLHead
from segattn.models.heads.emanet import EMAHead
from segattn.models.heads.fcn import FCNHead
from segattn.models.heads.gcnet import GCHead
from segattn.models.heads.isanet import ISAHead
from segattn.models.heads.nonlocal_head import NonLocalHead
from segattn.models.heads.ocrnet import OCRHead
from segattn.models.heads.psanet import PSAHead

__all__ = ["ANNHead", "DANetHead", "DNLHead", "EMAHead", "FCNHead", "GCHead", "ISAHead", "NonLocalHead", "OCRHead", "PSAHead", "RCCAHead"]
