"""Synthetic generator: deterministic by seed, official Cityscapes / ADE20K layouts and encodings."""
import cv2
import numpy as np

from segattn.data.ade20k import ADE20KDataset
from segattn.data.cityscapes import CityscapesDataset, TRAIN_TO_LABEL_ID
from segattn.data.synthetic import generate_cityscapes


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    kwargs = dict(num_train=2, num_val=1, height=32, width=64)
    a = _files(generate_cityscapes(tmp_path / "a", seed=3, **kwargs))
    b = _files(generate_cityscapes(tmp_path / "b", seed=3, **kwargs))
    c = _files(generate_cityscapes(tmp_path / "c", seed=4, **kwargs))
    assert len(a) == 6 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if "leftImg8bit" in k)


def test_cityscapes_labels_are_official_ids_with_void(small_cityscapes):
    values = set()
    for path in (small_cityscapes / "gtFine/train").glob("*/*_gtFine_labelIds.png"):
        values |= set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)).tolist())
    assert values <= set(range(34))
    assert len(values & set(TRAIN_TO_LABEL_ID)) >= 12  # most classes in 6 images
    assert values - set(TRAIN_TO_LABEL_ID)  # void ids (ego vehicle, blobs) are there too
    cities = {p.name for p in (small_cityscapes / "leftImg8bit/train").iterdir()}
    assert len(cities) == 3


def test_classes_sharing_a_colour_differ_by_texture(tmp_path):
    """Road and sidewalk have the same mean colour; sidewalk pixels vary far more (checker)."""
    root = generate_cityscapes(tmp_path, num_train=4, num_val=0, height=128, width=256, seed=1)
    ds = CityscapesDataset(root, "train")
    means, stds = {0: [], 1: []}, {0: [], 1: []}
    for i in range(len(ds)):
        image, mask = ds.load(i)
        for cls in (0, 1):
            inner = cv2.erode((mask == cls).astype(np.uint8), np.ones((5, 5))) > 0  # away from edges
            if inner.sum() > 200:
                means[cls].append(image[inner].mean(0))
                stds[cls].append(image[inner].std(0).mean())
    assert np.abs(np.mean(means[0], 0) - np.mean(means[1], 0)).max() < 25
    assert np.mean(stds[1]) > 2 * np.mean(stds[0])


def test_ade20k_layout_with_other_and_a_subset_of_ids(small_ade20k):
    ann = sorted((small_ade20k / "annotations/training").glob("*.png"))
    assert [p.name for p in ann][:2] == ["ADE_train_00000001.png", "ADE_train_00000002.png"]
    assert (small_ade20k / "images/training/ADE_train_00000001.jpg").is_file()
    values = set()
    for path in ann:
        values |= set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)).tolist())
    assert 0 in values and values <= set(range(151)) and len(values) > 4
    assert len(ADE20KDataset(small_ade20k, "validation")) == 2
