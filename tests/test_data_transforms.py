"""Train/val pipelines: shapes, masks only nearest/cropped/flipped/padded with 255, cat_max_ratio."""
import cv2
import numpy as np
import pytest
import torch

from segattn.data.transforms import RandomScaleCrop, build_train_transform, build_val_transform


def _blocky(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random image and a mask of 8x8 blocks with values {0, 3, 7, 255}."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    blocks = rng.choice(np.array([0, 3, 7, 255], np.uint8), (h // 8, w // 8))
    return image, np.kron(blocks, np.ones((8, 8), np.uint8))


def test_train_output_is_crop_sized_and_masks_keep_their_values():
    image, mask = _blocky(96, 128)
    t = build_train_transform(crop_size=(64, 80), scale_range=(0.5, 2.0))
    for _ in range(20):
        out = t(image=image, mask=mask)
        assert out["image"].shape == (3, 64, 80) and out["image"].dtype == torch.float32
        assert out["mask"].shape == (64, 80)
        assert set(out["mask"].unique().tolist()) <= {0, 3, 7, 255}


def test_small_images_are_padded_with_ignore_in_the_mask():
    image, mask = np.full((20, 30, 3), 128, np.uint8), np.full((20, 30), 5, np.uint8)
    t = build_train_transform(crop_size=32, scale_range=(1.0, 1.0), photometric=False, flip_prob=0)
    out = t(image=image, mask=mask)
    assert out["mask"].shape == (32, 32)
    assert bool((out["mask"][:20, :30] == 5).all()) and bool((out["mask"][20:] == 255).all())
    assert bool((out["mask"][:, 30:] == 255).all()) and float(out["image"][:, 20:].abs().max()) == 0


def test_photometric_changes_the_image_never_the_mask():
    image, mask = _blocky(64, 64, seed=1)
    t = build_train_transform(crop_size=64, scale_range=(1.0, 1.0), cat_max_ratio=1.0, flip_prob=0)
    plain = build_train_transform(crop_size=64, scale_range=(1.0, 1.0), photometric=False, flip_prob=0)
    reference = plain(image=image, mask=mask)["image"]
    changed = 0
    for _ in range(10):
        out = t(image=image, mask=mask)
        assert np.array_equal(out["mask"].numpy(), mask)
        changed += not torch.allclose(out["image"], reference)
    assert changed >= 5  # each of 4 ops applied with p=0.5


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_scale_crop_equals_rescale_then_crop(scale):
    """Warping only the crop gives the crop of the rescaled image."""
    image, mask = _blocky(64, 96, seed=3)
    t = RandomScaleCrop(24, 32, scale_range=(scale, scale))
    t.set_random_seed(0)
    params = t.get_params_dependent_on_data({"shape": mask.shape}, {"mask": mask})
    xs, ys = -round(params["matrix"][0, 2] - 0.5 * scale + 0.5), -round(params["matrix"][1, 2] - 0.5 * scale + 0.5)
    full_mask = cv2.resize(mask, (round(96 * scale), round(64 * scale)), interpolation=cv2.INTER_NEAREST_EXACT)
    full_image = cv2.resize(image, (round(96 * scale), round(64 * scale)), interpolation=cv2.INTER_LINEAR)
    h, w = min(24, full_mask.shape[0]), 32
    got_mask, got_image = t.apply_to_mask(mask, **params), t.apply(image, **params)
    assert got_mask.shape == (h, w) and got_image.shape == (h, w, 3)
    assert (got_mask == full_mask[ys:ys + h, xs:xs + w]).mean() > 0.99
    diff = np.abs(got_image.astype(int) - full_image[ys:ys + h, xs:xs + w])
    assert diff.max() <= 1  # rounding only


def test_flip_mirrors_image_and_mask_together():
    image, mask = _blocky(32, 32, seed=2)
    t = build_train_transform(crop_size=32, scale_range=(1.0, 1.0), flip_prob=1.0, photometric=False)
    out = t(image=image, mask=mask)
    assert np.array_equal(out["mask"].numpy(), mask[:, ::-1])
    plain = build_train_transform(crop_size=32, scale_range=(1.0, 1.0), flip_prob=0, photometric=False)
    assert torch.equal(out["image"], plain(image=image, mask=mask)["image"].flip(-1))


def _dominated_share(crop: RandomScaleCrop, mask: np.ndarray, n: int = 40) -> float:
    """Share of crops in which one class covers >= 75% of the labelled pixels."""
    bad = 0
    for _ in range(n):
        out = crop(image=np.zeros((*mask.shape, 3), np.uint8), mask=mask)["mask"]
        assert out.shape == (40, 40)
        counts = np.bincount(out.ravel(), minlength=256)[:255]
        bad += counts.max() / counts.sum() >= 0.75
    return bad / n


def test_cat_max_ratio_redraws_crops_dominated_by_one_class():
    mask = np.zeros((100, 100), np.uint8)
    mask[:50, :50] = 1
    free, checked = RandomScaleCrop(40, 40, cat_max_ratio=1.0), RandomScaleCrop(40, 40, cat_max_ratio=0.75)
    free.set_random_seed(0)
    checked.set_random_seed(0)
    assert _dominated_share(free, mask) > 0.6
    assert _dominated_share(checked, mask) < 0.1


def test_val_transform_full_resolution():
    image, mask = _blocky(40, 64)
    out = build_val_transform()(image=image, mask=mask)
    assert out["image"].shape == (3, 40, 64) and np.array_equal(out["mask"].numpy(), mask)
    assert "orig_size" not in out


@pytest.mark.parametrize("shape", [(40, 64), (64, 32)])
def test_val_resize_short_side_keeps_mask_at_original_size(shape):
    image, mask = _blocky(*shape)
    out = build_val_transform(resize_short=16)(image=image, mask=mask)
    h, w = shape
    assert min(out["image"].shape[1:]) == 16
    assert out["image"].shape[1] * w == pytest.approx(out["image"].shape[2] * h, rel=0.1)
    assert np.array_equal(out["mask"].numpy(), mask) and out["orig_size"].tolist() == [h, w]


def test_val_transform_needs_no_mask_and_normalises_like_the_mask_path():
    image = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    alone = build_val_transform(resize_short=8)(image=image)
    with_mask = build_val_transform(resize_short=8)(image=image, mask=np.zeros((12, 20), np.uint8))
    assert "mask" not in alone and torch.equal(alone["image"], with_mask["image"]) and alone["image"].shape == (3, 8, 13)
