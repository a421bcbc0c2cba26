"""segattn: semantic segmentation with attention heads (CCNet, DANet, Non-local, SE, CBAM)."""
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"


def load_model(path, device=None):
    """A Segmentor in eval mode from a segattn checkpoint: see :func:`segattn.api.load_model`."""
    from segattn.api import load_model as _load

    return _load(path, device)
