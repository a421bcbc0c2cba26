"""Receptive field: reach against distance by hand, zero gradient beyond a local model's reach, the script."""
import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from helpers.checkpoints import random_checkpoint
from script_loader import load_script
from segattn.diagnostics.receptive_field import input_gradients, reach_curve


def test_reach_curve_by_hand():
    gradient = np.zeros((5, 5))
    gradient[2, 2], gradient[2, 4], gradient[0, 2] = 2.0, 1.0, 1.0  # at the point, and two pixels 2 px away
    curve = reach_curve(gradient, (2, 2), np.array([0, 1, 1.9, 2, 3]))
    assert curve.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.0, 0.0])  # half the mass lies beyond 0..1.9 px
    assert reach_curve(np.zeros((3, 3)), (1, 1), np.array([0, 1])).tolist() == [0.0, 0.0]  # no gradient: no NaN


class _Local(nn.Module):
    """A 3x3 convolution: output (y, x) reads the input pixels at most one row and column away."""

    def __init__(self, global_term: bool):
        super().__init__()
        self.conv, self.global_term = nn.Conv2d(3, 2, 3, padding=1), global_term

    def forward(self, x):
        out = self.conv(x)
        return out + out.mean((2, 3), keepdim=True) if self.global_term else out


def test_a_local_model_has_no_gradient_beyond_its_reach_and_a_global_one_has():
    torch.manual_seed(0)
    image = torch.randn(3, 12, 16)
    local = input_gradients(_Local(False), image, [(5, 7)])[0]
    assert local.shape == (12, 16) and np.count_nonzero(local) == 9 and local[4:7, 6:9].all()
    assert reach_curve(local, (5, 7), np.array([np.sqrt(2)])) == pytest.approx([0.0])
    far = input_gradients(_Local(True), image, [(5, 7)])[0]
    assert far[0, 0] > 0 and reach_curve(far, (5, 7), np.array([5.0]))[0] > 0


def test_receptive_field_script_draws_every_checkpoint_and_point(tmp_path):
    fcn, ccnet = random_checkpoint(tmp_path, "fcn", "fcn_run"), random_checkpoint(tmp_path, "ccnet", "ccnet_run")
    cv2.imwrite(str(tmp_path / "street.png"), np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8))
    script = load_script("receptive_field")
    script.main([f"ckpt=[{fcn.parent.parent},{ccnet.parent.parent}]", f"image={tmp_path / 'street.png'}",
                 "points=[[10,20],[40,70]]", "device=cpu"])
    out = fcn.parent.parent / "receptive_field" / "street.png"
    width, height = Image.open(out).size
    assert width > 3 * 300 and height > 3 * 100  # 3 columns (image + 2 points), 3 rows (2 models + curves)
    with pytest.raises(SystemExit, match="outside the image"):
        script.main([f"ckpt={fcn}", f"image={tmp_path / 'street.png'}", "points=[[64,0]]"])


def test_points_follow_a_resizing_val_transform():
    view = load_script("receptive_field").model_view
    image = np.zeros((100, 200, 3), np.uint8)
    shown, points = view(image, [(50, 100), (99, 199)], (50, 100))
    assert shown.shape == (50, 100, 3) and points == [(25, 50), (49, 99)]
    assert view(image, [(1, 2)], (100, 200))[1] == [(1, 2)]
