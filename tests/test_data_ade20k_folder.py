"""ADE20K (reduce_zero_label, val resized with labels kept at original size) and the folder dataset."""
import cv2
import numpy as np
import pytest
import torch

from segattn.data.ade20k import CLASSES, PALETTE, ADE20KDataset
from segattn.data.datamodule import SegDataModule
from segattn.data.errors import DatasetError
from segattn.data.folder import FolderDataset
from segattn.data.transforms import build_val_transform


def test_ade_class_tables():
    assert len(CLASSES) == len(PALETTE) == 150
    assert CLASSES[:3] == ("wall", "building", "sky") and CLASSES[-1] == "flag"
    assert PALETTE[0] == (120, 120, 120) and PALETTE[149] == (92, 0, 255)


def test_ade_reduce_zero_label(small_ade20k):
    ds = ADE20KDataset(small_ade20k, "training")
    ann = small_ade20k / "annotations/training/ADE_train_00000001.png"
    raw = cv2.imread(str(ann), cv2.IMREAD_UNCHANGED)
    mask = ds[0]["mask"].numpy()
    assert np.array_equal(mask == 255, raw == 0) and 0 in raw
    np.testing.assert_array_equal(mask[raw > 0], raw[raw > 0].astype(np.int64) - 1)
    assert ds[0]["name"] == "ADE_train_00000001.jpg"


def test_ade_accepts_parent_folder_and_short_split_names(small_ade20k):
    assert len(ADE20KDataset(small_ade20k.parent, "val")) == 2


def test_ade_val_resized_image_original_mask(small_ade20k):
    ds = ADE20KDataset(small_ade20k, "validation", build_val_transform(resize_short=64))
    item = ds[0]
    h, w = item["mask"].shape
    assert item["orig_size"].tolist() == [h, w] and min(item["image"].shape[1:]) == 64


def test_ade_label_above_150_is_named(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    for sub in ("images/validation", "annotations/validation"):
        (root / sub).mkdir(parents=True)
    cv2.imwrite(str(root / "images/validation/ADE_val_00000001.jpg"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(root / "annotations/validation/ADE_val_00000001.png"), np.full((8, 8), 151, np.uint8))
    with pytest.raises(DatasetError, match=r"ADE_val_00000001.png contains values \[151\] .*0-150, 255"):
        ADE20KDataset(root, "validation")[0]


def _folder(root, palette=None):
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1)):
        for i in range(n):
            sub = root / "imgs" / split / "seq"
            sub.mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / "seq").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(sub / f"f{i}.png"), rng.integers(0, 255, (16, 24, 3), dtype=np.uint8))
            label = np.array([0, 1, 2, 255], np.uint8)[rng.integers(0, 4, (16, 24))]
            cv2.imwrite(str(root / "labels" / split / "seq" / f"f{i}_mask.png"), label)
    return dict(img_dir="imgs", ann_dir="labels", img_suffix=".png", ann_suffix="_mask.png",
                classes=["bg", "road", "car"], palette=palette)


def test_folder_dataset_reads_user_layout(tmp_path):
    kwargs = _folder(tmp_path)
    ds = FolderDataset(tmp_path, "train", **kwargs)
    assert len(ds) == 2 and ds.CLASSES == ("bg", "road", "car") and len(ds.PALETTE) == 3
    assert len(set(ds.PALETTE)) == 3
    item = ds[1]
    assert item["name"] == "seq/f1.png" and set(item["mask"].unique().tolist()) == {0, 1, 2, 255}


def test_folder_reduce_zero_label_and_value_check(tmp_path):
    kwargs = _folder(tmp_path)
    kwargs["classes"] = ["road", "car"]
    mask = FolderDataset(tmp_path, "train", reduce_zero_label=True, **kwargs)[0]["mask"]
    assert set(mask.unique().tolist()) == {0, 1, 255}
    kwargs["classes"] = ["bg", "road"]
    with pytest.raises(DatasetError, match=r"f0_mask.png contains values \[2\]"):
        FolderDataset(tmp_path, "train", **kwargs)[0]


def test_folder_bad_palette_and_missing_classes(tmp_path):
    kwargs = _folder(tmp_path, palette=[[1, 2, 3]])
    with pytest.raises(DatasetError, match="one \\[r, g, b\\] per class: 3 classes, 1 colours"):
        FolderDataset(tmp_path, "train", **kwargs)
    with pytest.raises(DatasetError, match="needs `classes`"):
        FolderDataset(tmp_path, "train", img_dir="imgs", ann_dir="labels")


def test_folder_missing_split_shows_layout(tmp_path):
    kwargs = _folder(tmp_path)
    with pytest.raises(DatasetError) as err:
        FolderDataset(tmp_path, "test", **kwargs)
    assert "imgs/test/**/<name>.png" in str(err.value) and "labels/" in str(err.value)


def test_datamodule_class_info_from_folder_kwargs(tmp_path):
    import functools

    kwargs = _folder(tmp_path, palette=[[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    dm = SegDataModule(functools.partial(FolderDataset, **kwargs), tmp_path, {"crop_size": 8}, {}, batch_size=2)
    assert dm.class_names == ("bg", "road", "car") and dm.palette[2] == (7, 8, 9) and dm.num_classes == 3
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["mask"].shape == (2, 8, 8)
    assert isinstance(next(iter(dm.val_dataloader()))["image"], torch.Tensor)
