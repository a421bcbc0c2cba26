"""Segmentation losses: cross-entropy (``ce``) and OHEM cross-entropy (``ohem``)."""
from segattn.losses.ce import CrossEntropy
from segattn.losses.ohem import OhemCrossEntropy

__all__ = ["CrossEntropy", "OhemCrossEntropy"]
