"""APNB and AFNB (ANN) against loop references written from the paper's equations (float64), the pyramid pooling
with its own bin boundaries."""
import math

import pytest
import torch

from segattn.models.attention.asymmetric_non_local import (AsymmetricFusion, AsymmetricPyramidNonLocal,
                                                           PyramidPooledKeys)


def _at(module, vector):
    return module(vector.view(1, -1, 1, 1))[0, :, 0, 0]


def pooled_reference(vectors, h, w, scales):
    """Bin (a, b) of scale s averages rows floor(a h / s) .. ceil((a + 1) h / s) - 1 (and columns alike)."""
    out = []
    for s in scales:
        for a in range(s):
            for b in range(s):
                rows = range(a * h // s, -(-(a + 1) * h // s))
                cols = range(b * w // s, -(-(b + 1) * w // s))
                cell = [vectors[i * w + j] for i in rows for j in cols]
                out.append(sum(cell) / len(cell))
    return out


def attention_reference(stage, queries, keys_in, h, w, scales):
    """``W_out sum_m softmax_m(theta(q_i) . P(phi(k))_m / sqrt(d)) P(g(k))_m`` for every query position."""
    d = stage.key_project.conv.out_channels
    keys = pooled_reference([_at(stage.key_project, v) for v in keys_in], h, w, scales)
    values = pooled_reference([_at(stage.value_project, v) for v in keys_in], h, w, scales)
    out = []
    for q in queries:
        qp = _at(stage.query_project, q)
        e = torch.stack([torch.dot(qp, k) / math.sqrt(d) for k in keys])
        a = torch.exp(e - e.max())
        a = a / a.sum()
        out.append(_at(stage.out_project, sum(a_m * v for a_m, v in zip(a, values))))
    return out


def _vectors(x):
    return [x[0, :, i, j] for i in range(x.shape[2]) for j in range(x.shape[3])]


def _randomised(module):
    torch.manual_seed(2)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2)
    return module.double().eval()


def _as_map(vectors, h, w):
    return torch.stack(vectors, 1).view(1, -1, h, w)


@pytest.mark.parametrize("size", [(5, 7), (9, 8)])
def test_apnb_matches_loop_reference(size):
    h, w = size
    block = _randomised(AsymmetricPyramidNonLocal(6, 4, (1, 2, 3)))
    assert block.stages[0].query_project is block.stages[0].key_project
    x = torch.randn(1, 6, h, w, dtype=torch.float64)
    xs = _vectors(x)
    y = attention_reference(block.stages[0], xs, xs, h, w, (1, 2, 3))
    expected = [_at(block.bottleneck, torch.cat([y_i, x_i])) for y_i, x_i in zip(y, xs)]
    assert (block(x) - _as_map(expected, h, w)).abs().max() < 1e-8


def test_afnb_matches_loop_reference():
    h, w = 6, 5
    block = _randomised(AsymmetricFusion(5, 7, 4, 7, (1, 3)))
    low, high = torch.randn(1, 5, h, w, dtype=torch.float64), torch.randn(1, 7, h, w, dtype=torch.float64)
    y = attention_reference(block.stages[0], _vectors(high), _vectors(low), h, w, (1, 3))
    expected = [_at(block.bottleneck, torch.cat([y_i, x_i])) for y_i, x_i in zip(y, _vectors(high))]
    out = block(low, high)
    assert out.shape == high.shape and (out - _as_map(expected, h, w)).abs().max() < 1e-8
    assert out.min() < 0  # the fusion's bottleneck has no ReLU


def test_pyramid_pooling_gives_sum_of_squares_positions_and_refuses_bad_scales():
    assert PyramidPooledKeys((1, 3, 6, 8))(torch.zeros(2, 4, 11, 13)).shape == (2, 4, 110)
    with pytest.raises(ValueError, match="key_pool_scales must be positive ints"):
        PyramidPooledKeys((0, 2))


def test_export_path_of_the_pyramid_pooling_equals_adaptive_pooling(monkeypatch):
    import segattn.models.attention.asymmetric_non_local as ann

    x = torch.randn(2, 3, 11, 7, dtype=torch.float64)
    pool = PyramidPooledKeys((1, 3, 6, 8))
    expected = pool(x)
    monkeypatch.setattr(ann, "recording", lambda: True)
    assert (pool(x) - expected).abs().max() < 1e-12
