"""PASCAL Context: 60 classes (0 = background is a class) and 59 (0 ignored, k -> k - 1); labels above 59 refused."""
import cv2
import numpy as np
import pytest

from segattn.data.errors import DatasetError
from segattn.data.pascal_context import CLASSES, PALETTE, PascalContext59Dataset, PascalContextDataset
from segattn.data.synthetic_pascal import generate_pascal_context


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return generate_pascal_context(tmp_path_factory.mktemp("ctx"), num_train=2, num_val=2, seed=0)


def _set_label(root, label):
    path = root / "VOCdevkit/VOC2010/SegmentationClassContext/2009_000000.png"
    cv2.imwrite(str(path), label)
    return path


def test_context_tables():
    assert len(CLASSES) == len(PALETTE) == 60 and CLASSES[:3] == ("background", "aeroplane", "bag")
    assert CLASSES[59] == "wood" and PALETTE[59] == (31, 0, 255) and PALETTE[0] == (120, 120, 120)
    assert PascalContext59Dataset.CLASSES[0] == "aeroplane" and len(PascalContext59Dataset.PALETTE) == 59


def test_context_60_and_59_label_rules_by_hand(tmp_path):
    root = generate_pascal_context(tmp_path, num_train=1, num_val=1)
    label = np.array([[0, 1, 2, 59], [255, 30, 0, 58]] * 24, np.uint8).repeat(16, axis=1)
    _set_label(root, label)
    m60 = PascalContextDataset(root, "val")[0]["mask"].numpy()[:2, ::16]
    m59 = PascalContext59Dataset(root, "val")[0]["mask"].numpy()[:2, ::16]
    np.testing.assert_array_equal(m60, [[0, 1, 2, 59], [255, 30, 0, 58]])
    np.testing.assert_array_equal(m59, [[255, 0, 1, 58], [255, 29, 255, 57]])


def test_context_generated_split(context):
    ds = PascalContext59Dataset(context / "VOCdevkit", "train")
    assert len(ds) == 2 and ds[1]["name"] == "2008_000001.jpg"
    raw = cv2.imread(str(context / "VOCdevkit/VOC2010/SegmentationClassContext/2008_000001.png"), cv2.IMREAD_UNCHANGED)
    mask = ds[1]["mask"].numpy()
    assert np.array_equal(mask == 255, raw == 0) and (raw == 0).any()
    np.testing.assert_array_equal(mask[raw > 0], raw[raw > 0].astype(np.int64) - 1)


def test_context_label_above_59_is_named(tmp_path):
    root = generate_pascal_context(tmp_path, num_train=1, num_val=1)
    _set_label(root, np.full((48, 64), 60, np.uint8))
    with pytest.raises(DatasetError, match=r"2009_000000.png contains values \[60\] .*\(allowed: 0-59, 255\)"):
        PascalContext59Dataset(root, "val")[0]


def test_context_missing_folder_shows_the_layout(tmp_path):
    (tmp_path / "VOCdevkit/VOC2010/JPEGImages").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"VOC2010/SegmentationClassContext not found \(split 'val'\)"):
        PascalContextDataset(tmp_path, "val")


@pytest.mark.parametrize("name", ["pascal_context", "pascal_context_59"])
def test_context_groups_have_the_keys_of_cityscapes(name):
    from test_data_voc import _data_group

    group, city = _data_group(name), _data_group("cityscapes")
    assert set(city) <= set(group) and set(city["train_transform"]) == set(group["train_transform"])
    assert group["train_transform"]["crop_size"] == [480, 480] and group["val_transform"]["resize_scale"] == [520, 520]


def test_dataset_stats_counts_context_59_pixels(context, tmp_path):
    import csv

    from script_loader import load_script

    argv = ["data=pascal_context_59", f"data.root={context}", "--split", "val", "--out", str(tmp_path), "--workers", "0"]
    assert load_script("dataset_stats").main(argv) == 0
    with open(tmp_path / "PascalContext59Dataset_val.csv") as f:
        pixels = [int(r["pixels"]) for r in csv.DictReader(f)]
    raws = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            for p in sorted((context / "VOCdevkit/VOC2010/SegmentationClassContext").glob("2009_*.png"))]
    assert pixels == [sum(int((r == k + 1).sum()) for r in raws) for k in range(59)]  # 0 (background) not counted
