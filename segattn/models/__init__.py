"""Backbones, attention blocks, heads and the Segmentor that joins them (build from config: ``segattn.models.build``)."""
from segattn.models.backbone import ResNetBackbone
from segattn.models.segmentor import Segmentor

__all__ = ["ResNetBackbone", "Segmentor"]
