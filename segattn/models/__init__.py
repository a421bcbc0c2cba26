"""Backbones, attention blocks, heads and the Segmentor that joins them."""
from segattn.models.backbone import ResNetBackbone
from segattn.models.build import build_segmentor
from segattn.models.segmentor import Segmentor

__all__ = ["ResNetBackbone", "Segmentor", "build_segmentor"]
