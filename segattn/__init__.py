"""segattn: semantic segmentation with attention heads (CCNet, DANet, Non-local, SE, CBAM)."""
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
