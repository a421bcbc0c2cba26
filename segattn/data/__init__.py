"""Datasets (Cityscapes, ADE20K, any folder, synthetic), augmentation pipelines and the DataModule."""
from segattn.data.ade20k import ADE20KDataset
from segattn.data.cityscapes import CityscapesDataset, label_ids_to_train_ids, train_ids_to_label_ids
from segattn.data.datamodule import SegDataModule
from segattn.data.errors import DatasetError
from segattn.data.folder import FolderDataset
from segattn.data.synthetic import generate_ade20k, generate_cityscapes
from segattn.data.transforms import build_train_transform, build_val_transform

__all__ = [
    "ADE20KDataset",
    "CityscapesDataset",
    "DatasetError",
    "FolderDataset",
    "SegDataModule",
    "build_train_transform",
    "build_val_transform",
    "generate_ade20k",
    "generate_cityscapes",
    "label_ids_to_train_ids",
    "train_ids_to_label_ids",
]
