"""Datasets (Cityscapes, ADE20K, PASCAL VOC and Context, LIP, COCO-Stuff, any folder, synthetic), augmentation pipelines and the DataModule.

Names are imported on first use, so scripts that need only the generator or one dataset do not
pay for importing Lightning.
"""
from importlib import import_module

_EXPORTS = {
    "ADE20KDataset": "ade20k",
    "CityscapesDataset": "cityscapes",
    "COCOStuff10kDataset": "coco_stuff",
    "COCOStuff164kDataset": "coco_stuff",
    "DatasetError": "errors",
    "FolderDataset": "folder",
    "LIPDataset": "lip",
    "PascalContext59Dataset": "pascal_context",
    "PascalContextDataset": "pascal_context",
    "SegDataModule": "datamodule",
    "VOC12AugDataset": "voc",
    "VOC12Dataset": "voc",
    "build_train_transform": "transforms",
    "build_val_transform": "transforms",
    "generate_ade20k": "synthetic",
    "generate_cityscapes": "synthetic",
    "generate_coco_stuff10k": "synthetic_coco",
    "generate_coco_stuff164k": "synthetic_coco",
    "generate_lip": "synthetic_pascal",
    "generate_pascal_context": "synthetic_pascal",
    "generate_voc": "synthetic_pascal",
    "label_ids_to_train_ids": "cityscapes",
    "train_ids_to_label_ids": "cityscapes",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'segattn.data' has no attribute {name!r}")
    return getattr(import_module(f"segattn.data.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
