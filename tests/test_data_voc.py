"""PASCAL VOC 2012 / VOC-aug: palette labels kept as class ids, 255 boundary ignored, aug list and SBD .mat labels."""
import numpy as np
import pytest
from PIL import Image

from segattn.data.errors import DatasetError
from segattn.data.synthetic_pascal import generate_voc, write_palette_png
from segattn.data.voc import CLASSES, COLORMAP, PALETTE, VOC12AugDataset, VOC12Dataset


def test_voc_tables_match_the_devkit():
    assert len(CLASSES) == len(PALETTE) == 21 and CLASSES[15] == "person" and CLASSES[20] == "tvmonitor"
    # VOClabelcolormap.m by hand: 1 -> bit0 of r at 128; 15 = 0b001111 -> r 128+64, g 128, b 128; 255 -> (224, 224, 192)
    assert PALETTE[0] == (0, 0, 0) and PALETTE[1] == (128, 0, 0) and PALETTE[15] == (192, 128, 128)
    assert COLORMAP[255] == (224, 224, 192) and PALETTE[20] == (0, 64, 128)


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return generate_voc(tmp_path_factory.mktemp("voc"), num_train=3, num_val=2, num_aug=4, seed=0)


def test_voc_palette_index_is_the_class_and_boundary_ignored(voc):
    ds = VOC12Dataset(voc, "val")
    assert len(ds) == 2 and ds[0]["name"] == "2009_000000.jpg"
    raw = np.asarray(Image.open(voc / "VOCdevkit/VOC2012/SegmentationClass/2009_000000.png"))
    mask = ds[0]["mask"].numpy()
    assert 255 in raw and (raw == 0).any() and ((raw > 0) & (raw < 255)).any()
    np.testing.assert_array_equal(mask, raw.astype(np.int64))  # identity: index k is class k, 255 stays 255


def test_voc_root_may_be_the_devkit_or_the_year_folder(voc):
    assert len(VOC12Dataset(voc / "VOCdevkit", "train")) == 3
    assert len(VOC12Dataset(voc / "VOCdevkit/VOC2012", "train")) == 3


def test_voc12aug_train_is_train_plus_aug_list(voc):
    train = VOC12AugDataset(voc, "train")
    assert len(train) == 3 + 4 + 3 and len(VOC12AugDataset(voc, "val")) == 2
    aug_label = voc / "VOCdevkit/VOC2012/SegmentationClassAug/2010_000001.png"
    assert train.samples[4][1] == aug_label and Image.open(aug_label).mode == "L"
    np.testing.assert_array_equal(train.load(4)[1], np.asarray(Image.open(aug_label)))


def test_voc12aug_reads_sbd_mat_and_builds_the_aug_list(tmp_path):
    pytest.importorskip("scipy")
    root = generate_voc(tmp_path, num_train=2, num_val=2, num_aug=4, sbd=True, seed=1)
    train = VOC12AugDataset(root, "train")
    # by hand: SBD train {a0, a1, t0, t1} + SBD val {a2, a3, v0} + VOC train {t0, t1} - VOC val {v0, v1}
    aug = [p[0].stem for p in train.samples[2:]]
    assert aug == ["2008_000000", "2008_000001", "2010_000000", "2010_000001", "2010_000002", "2010_000003"]
    assert train.samples[-1][1] == root / "benchmark_RELEASE/dataset/cls/2010_000003.mat"
    from scipy.io import loadmat
    expected = loadmat(str(train.samples[-1][1]))["GTcls"][0]["Segmentation"][0]
    np.testing.assert_array_equal(train[len(train) - 1]["mask"].numpy(), expected.astype(np.int64))


def _one(tmp_path, label, mode_palette=True, colormap=None):
    voc = tmp_path / "VOCdevkit/VOC2012"
    generate_voc(tmp_path, num_train=1, num_val=1)
    path = voc / "SegmentationClass/2009_000000.png"
    if mode_palette:
        write_palette_png(path, label, colormap or COLORMAP)
    else:
        Image.fromarray(label).save(path)
    return VOC12Dataset(tmp_path, "val")


def test_voc_rgb_or_grey_label_is_refused(tmp_path):
    ds = _one(tmp_path, np.zeros((48, 64), np.uint8), mode_palette=False)
    with pytest.raises(DatasetError, match=r"2009_000000.png has mode 'L': VOC labels are palette"):
        ds[0]


def test_voc_foreign_palette_is_refused(tmp_path):
    label = np.zeros((48, 64), np.uint8)
    label[:4] = 3
    other = [(0, 0, 0), (1, 1, 1), (2, 2, 2), (9, 9, 9)] + [(0, 0, 0)] * 252
    ds = _one(tmp_path, label, colormap=other)
    with pytest.raises(DatasetError, match=r"2009_000000.png has a palette that is not VOC's: values \[3\] have "
                                           r"colours \[\(9, 9, 9\)\], VOC's are \[\(128, 128, 0\)\]"):
        ds[0]


def test_voc_value_above_20_is_named(tmp_path):
    label = np.zeros((48, 64), np.uint8)
    label[0, 0] = 21
    with pytest.raises(DatasetError, match=r"2009_000000.png contains values \[21\] .*0-20, 255"):
        _one(tmp_path, label)[0]


def test_voc_missing_label_of_a_listed_name(tmp_path):
    generate_voc(tmp_path, num_train=2, num_val=1)
    (tmp_path / "VOCdevkit/VOC2012/SegmentationClass/2008_000001.png").unlink()
    with pytest.raises(DatasetError, match=r"train.txt are missing:\n  1 labels not in .*: 2008_000001.png"):
        VOC12Dataset(tmp_path, "train")


def _data_group(name):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from segattn.cli.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=[f"data={name}", "data.root=/data"]).data)


@pytest.mark.parametrize("name", ["voc12", "voc12aug"])
def test_voc_groups_have_the_keys_of_cityscapes(name):
    group, city = _data_group(name), _data_group("cityscapes")
    assert set(city) <= set(group) and set(city["train_transform"]) == set(group["train_transform"])
    assert (group["train_split"], group["val_split"], group["train_transform"]["crop_size"]) == ("train", "val", [512, 512])


def test_dataset_stats_counts_voc_pixels(voc, tmp_path):
    import csv

    from script_loader import load_script

    argv = ["data=voc12aug", f"data.root={voc}", "--split", "val", "--out", str(tmp_path), "--workers", "0"]
    assert load_script("dataset_stats").main(argv) == 0
    with open(tmp_path / "VOC12AugDataset_val.csv") as f:
        pixels = [int(r["pixels"]) for r in csv.DictReader(f)]
    raws = [np.asarray(Image.open(p)) for p in sorted((voc / "VOCdevkit/VOC2012/SegmentationClass").glob("2009_*.png"))]
    assert pixels == [sum(int((r == k).sum()) for r in raws) for k in range(21)]  # 255 not counted
