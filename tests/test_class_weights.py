"""Class weights and averaging of CE and OHEM against losses computed by hand; median-frequency weights."""
import json
import math

import pytest
import torch

from segattn.losses import CrossEntropy, OhemCrossEntropy
from segattn.losses.weights import load_class_weight, median_frequency_weights

# one image, 2 classes, 4 pixels: p(true class) = 0.9, 0.6, 0.3 and one ignored pixel
PROBS = torch.tensor([0.9, 0.6, 0.3, 0.5])
TARGET = torch.tensor([[[0, 1, 1, 255]]])


def _logits() -> torch.Tensor:
    """log-probabilities whose softmax gives PROBS for the TARGET classes (class 0 / class 1 columns)."""
    p_class0 = torch.tensor([0.9, 0.4, 0.7, 0.5])  # pixel 0 is class 0 (p 0.9); pixels 1, 2 are class 1 (p 0.6, 0.3)
    return torch.stack([p_class0.log(), (1 - p_class0).log()]).view(1, 2, 1, 4)


L0, L1, L2 = -math.log(0.9), -math.log(0.6), -math.log(0.3)
W = [2.0, 0.5]


@pytest.mark.parametrize("average, expected", [
    ("non_ignore", (2.0 * L0 + 0.5 * L1 + 0.5 * L2) / 3),   # mmseg avg_non_ignore=True
    ("weighted", (2.0 * L0 + 0.5 * L1 + 0.5 * L2) / 3.0),   # / (2 + 0.5 + 0.5) = 3 as well: see the next test
    ("all", (2.0 * L0 + 0.5 * L1 + 0.5 * L2) / 4),          # every pixel, the ignored one included
])
def test_weighted_cross_entropy_matches_the_hand_computed_loss(average, expected):
    loss = CrossEntropy(class_weight=W, average=average)(_logits(), TARGET)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_weighted_average_divides_by_the_weights_as_pytorch_does():
    weights = [3.0, 0.5]  # sum of the counted pixels' weights: 3 + 0.5 + 0.5 = 4 (not the 3 pixels)
    expected = (3.0 * L0 + 0.5 * L1 + 0.5 * L2) / 4.0
    loss = CrossEntropy(class_weight=weights, average="weighted")(_logits(), TARGET)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    reference = torch.nn.functional.cross_entropy(_logits(), TARGET, weight=torch.tensor(weights), ignore_index=255)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-5)
    assert CrossEntropy(class_weight=weights)(_logits(), TARGET).item() == pytest.approx(
        (3.0 * L0 + 0.5 * L1 + 0.5 * L2) / 3, rel=1e-5)


def test_ohem_with_class_weights_keeps_the_same_pixels_and_weights_them():
    # thresh 0.7 keeps p = 0.6 and 0.3 (both class 1, weight 0.5); p = 0.9 is easy and dropped
    loss = OhemCrossEntropy(thresh=0.7, min_kept=1, class_weight=W)(_logits(), TARGET)
    assert loss.item() == pytest.approx((0.5 * L1 + 0.5 * L2) / 2, rel=1e-5)
    loss = OhemCrossEntropy(thresh=0.7, min_kept=1, class_weight=[1.0, 3.0], average="weighted")(_logits(), TARGET)
    assert loss.item() == pytest.approx((3.0 * L1 + 3.0 * L2) / 6.0, rel=1e-5)


def test_all_ignored_batch_gives_zero_loss_and_zero_gradients_with_weights():
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255)
    for average in ("non_ignore", "weighted", "all"):
        loss = CrossEntropy(class_weight=W, average=average)(logits, target)
        loss.backward()
        assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_class_weights_are_checked():
    with pytest.raises(ValueError, match="one per class \\(3\\)"):
        CrossEntropy(class_weight=W)(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="finite weights >= 0"):
        CrossEntropy(class_weight=[1.0, float("nan")])
    with pytest.raises(ValueError, match="expected one of"):
        CrossEntropy(average="mean")


def test_median_frequency_weights_by_hand_and_from_a_file(tmp_path):
    # shares 0.5, 0.3, 0.2, 0 -> median of the present shares 0.3 -> 0.6, 1.0, 1.5, 0
    assert median_frequency_weights([50, 30, 20, 0]) == pytest.approx([0.6, 1.0, 1.5, 0.0])
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"class_weight": [0.6, 1.0, 1.5]}))
    assert load_class_weight(str(path)).tolist() == pytest.approx([0.6, 1.0, 1.5])
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="'class_weight' list"):
        load_class_weight(str(path))
    with pytest.raises(FileNotFoundError, match="dataset_stats.py"):
        load_class_weight(str(tmp_path / "missing.json"))
