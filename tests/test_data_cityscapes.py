"""Cityscapes loader: label-id mapping, reading the official layout, and one clear error per bad input."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from segattn.data.cityscapes import (
    CLASSES, PALETTE, CityscapesDataset, label_ids_to_train_ids, train_ids_to_label_ids,
)
from segattn.data.errors import DatasetError


def test_label_id_mapping_on_hand_made_mask():
    label_ids = np.array([[7, 8, 26, 33], [0, 1, 255, 6], [24, 25, 9, 34]], np.uint8)
    expected = np.array([[0, 1, 13, 18], [255, 255, 255, 255], [11, 12, 255, 255]], np.uint8)
    np.testing.assert_array_equal(label_ids_to_train_ids(label_ids), expected)


def test_train_ids_back_to_label_ids():
    train_ids = np.arange(19)
    label_ids = train_ids_to_label_ids(train_ids)
    assert label_ids.tolist() == [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    np.testing.assert_array_equal(label_ids_to_train_ids(label_ids), train_ids)
    assert train_ids_to_label_ids(np.array([255]))[0] == 0
    assert len(CLASSES) == len(PALETTE) == 19 and CLASSES[13] == "car" and PALETTE[0] == (128, 64, 128)


def test_reads_official_layout(small_cityscapes):
    ds = CityscapesDataset(small_cityscapes, "train")
    assert len(ds) == 6
    item = ds[0]
    assert item["image"].shape == (3, 64, 128) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (64, 128) and item["mask"].dtype == torch.int64
    assert item["name"] == "aachen/aachen_000000_000019_leftImg8bit.png"
    raw = cv2.imread(str(small_cityscapes / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"), -1)
    np.testing.assert_array_equal(item["mask"].numpy(), label_ids_to_train_ids(raw))
    assert abs(float(item["image"].mean())) < 3  # normalised, not 0..255


def test_train_ids_files_give_the_same_masks(tiny_cityscapes):
    for path in (tiny_cityscapes / "gtFine/train").glob("*/*_gtFine_labelIds.png"):
        train_ids = label_ids_to_train_ids(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
        cv2.imwrite(str(path).replace("_labelIds", "_labelTrainIds"), train_ids)
    by_ids = CityscapesDataset(tiny_cityscapes, "train")
    by_train_ids = CityscapesDataset(tiny_cityscapes, "train", use_train_ids=True)
    for i in range(len(by_ids)):
        assert torch.equal(by_ids[i]["mask"], by_train_ids[i]["mask"])


def test_test_split_needs_no_labels(small_cityscapes):
    ds = CityscapesDataset(small_cityscapes, "test")
    assert len(ds) == 1 and bool((ds[0]["mask"] == 255).all())


def test_missing_root_shows_expected_and_found(tmp_path):
    with pytest.raises(DatasetError) as err:
        CityscapesDataset(tmp_path / "nowhere", "train")
    msg = str(err.value)
    assert "leftImg8bit/train/<city>/" in msg and "gtFine/train/<city>/" in msg
    assert f"{tmp_path / 'nowhere'} does not exist" in msg


def test_missing_split_lists_what_was_found(tiny_cityscapes):
    with pytest.raises(DatasetError) as err:
        CityscapesDataset(tiny_cityscapes, "trainextra")
    msg = str(err.value)
    assert "leftImg8bit/trainextra" in msg and "Found:" in msg
    assert "    train/" in msg and "    val/" in msg  # the splits that do exist


def test_image_without_label_is_listed(tiny_cityscapes):
    (tiny_cityscapes / "gtFine/train/bremen/bremen_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DatasetError, match=r"1 images without a '\*_gtFine_labelIds.png' label: "
                       r"bremen/bremen_000000_000019_leftImg8bit.png"):
        CityscapesDataset(tiny_cityscapes, "train")


def test_label_without_image_is_listed(tiny_cityscapes):
    for stem in ("aachen_000000_000019", "zurich_000000_000019"):
        (tiny_cityscapes / f"leftImg8bit/train/{stem[:6]}/{stem}_leftImg8bit.png").unlink()
    with pytest.raises(DatasetError, match=r"2 labels without a '\*_leftImg8bit.png' image: "
                       r"aachen/aachen_000000_000019_gtFine_labelIds.png, zurich/"):
        CityscapesDataset(tiny_cityscapes, "train")


def _first(root: Path, kind: str) -> Path:
    folder, suffix = {"image": ("leftImg8bit", "_leftImg8bit.png"), "label": ("gtFine", "_gtFine_labelIds.png")}[kind]
    return root / folder / "train/aachen" / f"aachen_000000_000019{suffix}"


@pytest.mark.parametrize("kind", ["image", "label"])
def test_truncated_file_is_named(tiny_cityscapes, kind):
    path = _first(tiny_cityscapes, kind)
    path.write_bytes(path.read_bytes()[:200])
    ds = CityscapesDataset(tiny_cityscapes, "train")
    with pytest.raises(DatasetError, match=f"{path} is truncated"):
        ds[0]


def test_unreadable_file_is_named_from_a_worker(tiny_cityscapes):
    path = _first(tiny_cityscapes, "image")
    path.write_bytes(b"not a png at all")
    loader = DataLoader(CityscapesDataset(tiny_cityscapes, "train"), batch_size=1, num_workers=1)
    with pytest.raises(DatasetError, match=f"cannot decode image {path}"):
        next(iter(loader))


def test_label_values_outside_ids_are_named(tiny_cityscapes):
    path = _first(tiny_cityscapes, "label")
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    label[0, :3] = [40, 41, 40]
    cv2.imwrite(str(path), label)
    with pytest.raises(DatasetError, match=rf"label {path} contains values \[40, 41\] outside .*0-33, 255"):
        CityscapesDataset(tiny_cityscapes, "train")[0]


def test_size_mismatch_names_both_files(tiny_cityscapes):
    path = _first(tiny_cityscapes, "label")
    cv2.imwrite(str(path), np.full((16, 64), 7, np.uint8))
    with pytest.raises(DatasetError) as err:
        CityscapesDataset(tiny_cityscapes, "train")[0]
    msg = str(err.value)
    assert str(_first(tiny_cityscapes, "image")) in msg and "32x64" in msg
    assert str(path) in msg and "16x64" in msg


def test_empty_split_is_an_error(tmp_path):
    for folder in ("leftImg8bit/val/lindau", "gtFine/val/lindau"):
        (tmp_path / folder).mkdir(parents=True)
    with pytest.raises(DatasetError, match="split 'val' .* is empty"):
        CityscapesDataset(tmp_path, "val")
