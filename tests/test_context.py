"""The context task: labels follow the far marker, and an FCN head provably cannot see it."""
from functools import partial

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from segattn.cli.config import CONFIG_DIR
from segattn.data.context import CLASSES, PALETTE, far_zone, generate_context, render
from segattn.data.files import read_image, read_label
from segattn.models.backbone import ResNetBackbone
from segattn.models.heads import FCNHead
from segattn.models.segmentor import Segmentor

H, W, MARKER, DISTANCE = 16, 464, 32, 304  # the defaults of generate_context and conf/data/context.yaml


def test_labels_follow_the_marker_and_far_zone_texture_is_shared():
    seen = set()
    for i in range(12):
        image, labels = render(np.random.default_rng(i), H, W, MARKER, DISTANCE)
        left = bool((labels[:, MARKER : MARKER + 100] == 0).all())  # flat background beside a left marker
        cls = int(labels[0, 0] if left else labels[0, -1])
        band = slice(0, MARKER) if left else slice(W - MARKER, W)
        assert cls in range(1, len(CLASSES)) and (labels[:, band] == cls).all()
        assert np.abs(image[:, band].reshape(-1, 3).mean(0) - PALETTE[cls]).max() < 40  # marker colour
        zone = far_zone(W, MARKER, DISTANCE, left)
        assert set(np.unique(labels[:, zone])) <= {0, cls} and (labels[:, zone] == cls).mean() > 0.5
        outside = np.ones(W, bool)
        outside[zone], outside[band] = False, False
        assert (labels[:, outside] == 0).all()
        seen.add((cls, bool(left)))
    assert len({c for c, _ in seen}) >= 3 and len({s for _, s in seen}) == 2
    # the far-zone texture does not depend on the class: grey checkerboard, no colour cast
    region = image[:, zone][labels[:, zone] == cls].astype(float)
    assert np.abs(region.mean(0) - region.mean()).max() < 15


@pytest.mark.parametrize("output_stride", [8, 16])
def test_fcn_output_in_the_far_zone_does_not_depend_on_the_marker(output_stride):
    torch.manual_seed(0)
    model = Segmentor(ResNetBackbone(18, output_stride), partial(FCNHead, channels=8), 5, aux_weight=0).eval()
    x = torch.randn(1, 3, H, W, requires_grad=True)
    zone = far_zone(W, MARKER, DISTANCE, marker_left=True)
    logits = model(x)
    far = torch.autograd.grad(logits[..., zone].sum(), x, retain_graph=True)[0]
    assert far[..., :MARKER].abs().max() == 0  # marker outside the receptive field: exactly zero
    near = torch.autograd.grad(logits[..., zone.start - 48].sum(), x)[0]
    assert near[..., :MARKER].abs().max() > 0  # ...but only just: 48 px closer it is inside


def test_generated_split_is_read_by_the_recipe_config(tmp_path):
    root = generate_context(tmp_path / "ctx", num_train=2, num_val=1)
    again = generate_context(tmp_path / "again", num_train=2, num_val=1)
    name = "images/train/ctx_00001.png"
    assert (root / name).read_bytes() == (again / name).read_bytes()
    assert read_image(root / name).shape == (H, W, 3) and read_label(root / "annotations/val/ctx_00000.png").max() >= 1
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["data=context", f"data.root={root}", "data.batch_size=2"])
    datamodule = instantiate(cfg.data)
    assert datamodule.class_names == CLASSES and datamodule.palette == PALETTE
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape == (2, 3, H, W) and batch["mask"].shape == (2, H, W)


def test_too_narrow_images_are_refused(tmp_path):
    with pytest.raises(ValueError, match="width >= "):
        generate_context(tmp_path, num_train=1, num_val=1, width=256)
