"""COCO-Stuff 164k (PNG = COCO id - 1) and 10k (.mat S = COCO id): the 171 used ids -> 0..170, unused ids refused."""
import cv2
import numpy as np
import pytest

from segattn.data.coco_stuff import CLASSES, PALETTE, USED_IDS, COCOStuff10kDataset, COCOStuff164kDataset
from segattn.data.errors import DatasetError
from segattn.data.synthetic_coco import generate_coco_stuff10k, generate_coco_stuff164k


def test_coco_stuff_tables():
    assert len(CLASSES) == len(PALETTE) == len(USED_IDS) == 171
    # by hand: ids 1..11 are classes 0..10, id 12 is unused, 13 (stop sign) is class 11; 92 (banner) starts stuff
    assert USED_IDS[:12] == tuple(range(1, 12)) + (13,) and CLASSES[11] == "stop sign"
    assert CLASSES[USED_IDS.index(92)] == "banner" == CLASSES[80] and USED_IDS[-1] == 182 and CLASSES[-1] == "wood"


def test_164k_values_by_hand(tmp_path):
    root = generate_coco_stuff164k(tmp_path, num_train=1, num_val=1)
    path = next((root / "annotations/val2017").glob("*.png"))
    row = np.array([0, 10, 12, 91, 181, 255], np.uint8)  # COCO ids 1, 11, 13, 92, 182 and unlabeled
    cv2.imwrite(str(path), np.tile(row, (48, 11))[:, :64])
    mask = COCOStuff164kDataset(root, "val")[0]["mask"].numpy()
    np.testing.assert_array_equal(mask[0, :6], [0, 10, 11, 80, 170, 255])


def test_164k_unused_value_is_named(tmp_path):
    root = generate_coco_stuff164k(tmp_path, num_train=1, num_val=1)
    path = next((root / "annotations/val2017").glob("*.png"))
    cv2.imwrite(str(path), np.full((48, 64), 11, np.uint8))  # COCO id 12: no class
    with pytest.raises(DatasetError, match=r"000000000000.png contains values \[11\] outside the ids"):
        COCOStuff164kDataset(root, "val2017")[0]


def test_164k_generated_split(tmp_path):
    root = generate_coco_stuff164k(tmp_path, num_train=2, num_val=1, seed=3)
    ds = COCOStuff164kDataset(root, "train")
    raw = cv2.imread(str(root / "annotations/train2017/000000000001.png"), cv2.IMREAD_UNCHANGED)
    expected = np.full(raw.shape, 255)
    for k, coco_id in enumerate(USED_IDS):
        expected[raw == coco_id - 1] = k
    assert len(ds) == 2 and ds[1]["name"] == "000000000001.jpg"
    np.testing.assert_array_equal(ds[1]["mask"].numpy(), expected)


def test_10k_mat_ids_by_hand(tmp_path):
    pytest.importorskip("scipy")
    from scipy.io import savemat

    root = generate_coco_stuff10k(tmp_path, num_train=2, num_val=1)
    ds = COCOStuff10kDataset(root, "val")
    assert len(ds) == 1 and len(COCOStuff10kDataset(root, "train")) == 2
    row = np.array([0, 1, 11, 13, 92, 182], np.uint16)
    savemat(ds.samples[0][1], {"S": np.tile(row, (48, 11))[:, :64]})
    np.testing.assert_array_equal(ds[0]["mask"].numpy()[0, :6], [255, 0, 10, 11, 80, 170])
    savemat(ds.samples[0][1], {"S": np.full((48, 64), 91, np.uint16)})
    with pytest.raises(DatasetError, match=r"\.mat contains values \[91\] outside the ids"):
        ds[0]
    savemat(ds.samples[0][1], {"L": np.zeros((48, 64), np.uint16)})
    with pytest.raises(DatasetError, match=r"\.mat has no 'S' map"):
        ds[0]


@pytest.mark.parametrize("name", ["coco_stuff164k", "coco_stuff10k"])
def test_coco_groups_have_the_keys_of_cityscapes(name):
    from test_data_voc import _data_group

    group, city = _data_group(name), _data_group("cityscapes")
    assert set(city) <= set(group) and set(city["train_transform"]) == set(group["train_transform"])
    assert group["train_transform"]["crop_size"] == [512, 512]


def test_dataset_stats_counts_coco_10k_pixels(tmp_path):
    pytest.importorskip("scipy")
    import csv

    from scipy.io import loadmat

    from script_loader import load_script

    root = generate_coco_stuff10k(tmp_path / "coco", num_train=1, num_val=2)
    argv = ["data=coco_stuff10k", f"data.root={root}", "--split", "val", "--out", str(tmp_path), "--workers", "0"]
    assert load_script("dataset_stats").main(argv) == 0
    with open(tmp_path / "COCOStuff10kDataset_val.csv") as f:
        pixels = [int(r["pixels"]) for r in csv.DictReader(f)]
    raws = [loadmat(str(p))["S"] for p in sorted((root / "annotations").glob("COCO_train2014_1*.mat"))]
    assert len(raws) == 2 and pixels == [sum(int((r == i).sum()) for r in raws) for i in USED_IDS]
