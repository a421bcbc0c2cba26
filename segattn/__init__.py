"""segattn: semantic segmentation with attention heads (CCNet, DANet, Non-local, SE, CBAM).

The public API: ``create_model``, ``list_models``, ``load_model``, ``model.predict`` and ``export_model``.
"""
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"


def create_model(head, backbone="resnet50", num_classes=19, **options):
    """A fresh Segmentor with the config files' defaults: see :func:`segattn.models.factory.create_model`."""
    from segattn.models.factory import create_model as _create

    return _create(head, backbone, num_classes, **options)


def list_models():
    """``{"heads": [...], "backbones": [...]}``: see :func:`segattn.models.factory.list_models`."""
    from segattn.models.factory import list_models as _list

    return _list()


def load_model(path, device=None):
    """A Segmentor in eval mode from a segattn checkpoint: see :func:`segattn.api.load_model`."""
    from segattn.api import load_model as _load

    return _load(path, device)


def export_model(model, path, format="onnx", **options):
    """Write ``model`` as ONNX or TorchScript: see :func:`segattn.export.export_model` (``segattn.export`` is
    the subpackage, hence the longer name)."""
    from segattn.export import export_model as _export

    return _export(model, path, format, **options)
