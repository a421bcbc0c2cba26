"""LIP: 20 classes with background, labels above 19 refused, and FLIP_PAIRS swapped by the train and test-time flips."""
import cv2
import numpy as np
import pytest
import torch
from torch import nn

from segattn.data.cityscapes import CityscapesDataset
from segattn.data.datamodule import SegDataModule
from segattn.data.errors import DatasetError
from segattn.data.lip import CLASSES, FLIP_PAIRS, PALETTE, LIPDataset
from segattn.data.synthetic_pascal import generate_lip
from segattn.data.transforms import build_train_transform
from segattn.inference.passes import predict_probabilities
from segattn.inference.pipeline import dataset_flip_pairs


@pytest.fixture(scope="module")
def lip(tmp_path_factory):
    return generate_lip(tmp_path_factory.mktemp("lip"), num_train=2, num_val=2, seed=0)


def _raw(root, split, i):
    name = sorted((root / f"TrainVal_parsing_annotations/{split}_segmentations").glob("*.png"))[i]
    return cv2.imread(str(name), cv2.IMREAD_UNCHANGED)


def _swapped_by_hand(label):
    out = label.copy()
    for a, b in ((14, 15), (16, 17), (18, 19)):
        out[label == a], out[label == b] = b, a
    return out


def test_lip_tables():
    assert len(CLASSES) == len(PALETTE) == 20 and CLASSES[14:16] == ("Left-arm", "Right-arm")
    assert FLIP_PAIRS == ((14, 15), (16, 17), (18, 19)) and CityscapesDataset.FLIP_PAIRS == ()


def test_lip_labels_are_the_classes(lip):
    ds = LIPDataset(lip, "val")
    assert len(ds) == 2 and ds[0]["name"] == "100000_1.jpg"
    raw = _raw(lip, "val", 0)
    assert {0, 14, 15} <= set(np.unique(raw).tolist())
    np.testing.assert_array_equal(ds[0]["mask"].numpy(), raw.astype(np.int64))


def test_lip_flat_layout(tmp_path):
    src = generate_lip(tmp_path / "zips", num_train=1, num_val=1)
    for sub in ("TrainVal_images", "TrainVal_parsing_annotations"):
        for item in (src / sub).iterdir():
            item.rename(tmp_path / item.name)
    assert len(LIPDataset(tmp_path, "train")) == 1


def test_lip_label_above_19_is_named(tmp_path):
    root = generate_lip(tmp_path, num_train=1, num_val=1)
    path = root / "TrainVal_parsing_annotations/val_segmentations/100000_1.png"
    label = _raw(root, "val", 0)
    label[0, 0] = 20
    cv2.imwrite(str(path), label)
    with pytest.raises(DatasetError, match=r"100000_1.png contains values \[20\] .*\(allowed: 0-19, 255\)"):
        LIPDataset(root, "val")[0]


def test_train_flip_swaps_the_dataset_pairs(lip):
    dm = SegDataModule(LIPDataset, lip, train_transform=dict(crop_size=[48, 32], scale_range=[1.0, 1.0],
                                                             flip_prob=1.0, photometric=False))
    assert dm.flip_pairs == FLIP_PAIRS
    mask = dm.build("train", train=True)[0]["mask"].numpy()
    raw = _raw(lip, "train", 0)
    np.testing.assert_array_equal(mask, _swapped_by_hand(raw[:, ::-1]).astype(np.int64))
    plain = build_train_transform(crop_size=[48, 32], scale_range=[1.0, 1.0], flip_prob=1.0, photometric=False)
    np.testing.assert_array_equal(plain(image=np.zeros((48, 32, 3), np.uint8), mask=raw)["mask"].numpy(), raw[:, ::-1])


class _SidedModel(nn.Module):
    """Logits 20 x H x W: class 14 (left arm) on the left half of its input, 15 on the right, 13 weakly everywhere."""

    align_corners, num_classes = False, 20

    def forward(self, x):
        b, _, h, w = x.shape
        out = torch.zeros(b, 20, h, w)
        out[:, 14, :, : w // 2] = 5
        out[:, 15, :, w // 2:] = 5
        out[:, 13] = 1
        return out


def test_test_time_flip_swaps_the_pair_channels():
    x = torch.zeros(1, 3, 8, 8)
    plain = predict_probabilities(_SidedModel(), x, flip=False, num_classes=20)
    paired = predict_probabilities(_SidedModel(), x, flip=True, flip_pairs=FLIP_PAIRS, num_classes=20)
    torch.testing.assert_close(paired, plain)  # the model is left/right consistent once the pair is swapped
    unpaired = predict_probabilities(_SidedModel(), x, flip=True, num_classes=20)
    torch.testing.assert_close(unpaired[0, 14], unpaired[0, 15].flip(-1))
    assert (unpaired[0, 14, :, :4] < plain[0, 14, :, :4]).all()


def test_predictor_passes_the_pairs_on():
    from segattn.inference.predictor import Predictor

    pred = Predictor(_SidedModel(), torch.device("cpu"), flip=True, flip_pairs=FLIP_PAIRS)(torch.zeros(1, 3, 8, 8), (8, 8))
    assert (pred[0, :, :4] == 14).all() and (pred[0, :, 4:] == 15).all()


def test_checkpoint_pipeline_reads_the_dataset_pairs():
    assert dataset_flip_pairs("segattn.data.lip.LIPDataset") == [[14, 15], [16, 17], [18, 19]]
    assert dataset_flip_pairs("segattn.data.cityscapes.CityscapesDataset") == [] and dataset_flip_pairs(None) == []


def test_lip_group_has_the_keys_of_cityscapes():
    from test_data_voc import _data_group

    group, city = _data_group("lip"), _data_group("cityscapes")
    assert set(city) <= set(group) and set(city["train_transform"]) == set(group["train_transform"])
    assert group["train_transform"]["crop_size"] == [473, 473]


def test_dataset_stats_counts_lip_pixels(lip, tmp_path):
    import csv

    from script_loader import load_script

    argv = ["data=lip", f"data.root={lip}", "--split", "train", "--out", str(tmp_path), "--workers", "0"]
    assert load_script("dataset_stats").main(argv) == 0
    with open(tmp_path / "LIPDataset_train.csv") as f:
        pixels = [int(r["pixels"]) for r in csv.DictReader(f)]
    raws = [_raw(lip, "train", i) for i in range(2)]
    assert pixels == [sum(int((r == k).sum()) for r in raws) for k in range(20)]
