import math

import pytest
import torch
import torch.nn.functional as F

from segattn.losses import CrossEntropy, OhemCrossEntropy
from segattn.engine.schedule import poly_schedule


def test_cross_entropy_ignores_255():
    logits = torch.randn(2, 4, 5, 6)
    target = torch.randint(0, 4, (2, 5, 6))
    noisy = target.clone()
    noisy[:, :2] = 255
    expected = F.cross_entropy(logits[:, :, 2:].permute(0, 2, 3, 1).reshape(-1, 4), target[:, 2:].reshape(-1))
    assert torch.allclose(CrossEntropy()(logits, noisy), expected)


def test_ohem_keeps_hard_pixels_below_threshold():
    # four pixels with p(true) = 0.9, 0.6, 0.3, (ignored)
    probs = torch.tensor([0.9, 0.6, 0.3, 0.5])
    logits = torch.stack([probs.log(), (1 - probs).log()]).view(1, 2, 1, 4)
    target = torch.tensor([[[0, 0, 0, 255]]])
    loss = OhemCrossEntropy(thresh=0.7, min_kept=1)(logits, target)
    assert torch.isclose(loss, -(torch.tensor(0.6).log() + torch.tensor(0.3).log()) / 2)
    # min_kept above the count under the threshold raises the threshold to the min_kept-th smallest prob
    loss = OhemCrossEntropy(thresh=0.1, min_kept=2)(logits, target)
    assert torch.isclose(loss, -(torch.tensor(0.6).log() + torch.tensor(0.3).log()) / 2)
    # fewer valid pixels than min_kept: all valid pixels are kept
    loss = OhemCrossEntropy(thresh=0.1, min_kept=10)(logits, target)
    assert torch.isclose(loss, -torch.tensor([0.9, 0.6, 0.3]).log().mean())


def _lrs(scheduler, steps):
    values = []
    for _ in range(steps):
        values.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def test_poly_schedule_values():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    lrs = _lrs(poly_schedule(opt, max_steps=100, power=0.9), 100)
    for t in (0, 1, 50, 99):
        assert lrs[t] == pytest.approx(0.01 * (1 - t / 100) ** 0.9, rel=1e-6)


def test_poly_schedule_warmup_then_poly():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    lrs = _lrs(poly_schedule(opt, max_steps=110, power=1.0, warmup_steps=10, warmup_ratio=0.1), 110)
    assert lrs[0] == pytest.approx(0.001)
    assert lrs[5] == pytest.approx(0.001 + 0.009 * 5 / 10)
    assert lrs[10] == pytest.approx(0.01)
    assert lrs[60] == pytest.approx(0.01 * (1 - 50 / 100))
    assert all(not math.isnan(v) for v in lrs)
