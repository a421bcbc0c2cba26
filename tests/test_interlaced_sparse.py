"""InterlacedSparseAttention and KeyQueryAttention against loop references written from the ISA paper's equations
(float64): long-range attention among positions a down factor apart, then short-range attention within blocks."""
import math

import pytest
import torch
import torch.nn.functional as F

from segattn.models.attention.interlaced_sparse import InterlacedSparseAttention


def _randomise(module):
    torch.manual_seed(3)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2)
    return module.double().eval()


def _pointwise(module, x, i, j):
    """A 1x1 layer stack applied at one position: ``C`` -> ``C'``."""
    return module(x[:, :, i:i + 1, j:j + 1])[0, :, 0, 0]


def attention_reference(relation, x, groups):
    """``out_p = W_out(sum_{r in group(p)} softmax_r(q_p . k_r / sqrt(d)) v_r)`` per position (one image), with the
    group of each position listed in ``groups`` (lists of (row, col))."""
    out = torch.zeros_like(x)
    d = relation.query_project[-1].conv.out_channels
    for group in groups:
        q = {p: _pointwise(relation.query_project, x, *p) for p in group}
        k = {p: _pointwise(relation.key_project, x, *p) for p in group}
        v = {p: _pointwise(relation.value_project, x, *p) for p in group}
        for p in group:
            e = torch.stack([torch.dot(q[p], k[r]) / math.sqrt(d) for r in group])
            a = torch.exp(e - e.max())
            a = a / a.sum()
            y = sum(a_r * v[r] for a_r, r in zip(a, group))
            out[0, :, p[0], p[1]] = relation.out_project(y.view(1, -1, 1, 1))[0, :, 0, 0]
    return out


def isa_reference(block, x):
    ph, pw = block.down_factor
    h, w = x.shape[-2:]
    hh, ww = math.ceil(h / ph) * ph, math.ceil(w / pw) * pw
    top, left = (hh - h) // 2, (ww - w) // 2
    xp = F.pad(x, (left, ww - w - left, top, hh - h - top))
    cells = [(i, j) for i in range(hh) for j in range(ww)]
    long_range = [[c for c in cells if c[0] % ph == a and c[1] % pw == b] for a in range(ph) for b in range(pw)]
    short_range = [[c for c in cells if c[0] // ph == a and c[1] // pw == b] for a in range(hh // ph) for b in range(ww // pw)]
    y = attention_reference(block.global_relation, xp, long_range)
    y = attention_reference(block.local_relation, y, short_range)
    return y[:, :, top:top + h, left:left + w]


@pytest.mark.parametrize("size,down", [((6, 8), (2, 4)), ((7, 10), (3, 4)), ((5, 5), (8, 8))])
def test_isa_matches_loop_reference(size, down):
    block = _randomise(InterlacedSparseAttention(6, 4, down))
    x = torch.randn(2, 6, *size, dtype=torch.float64)
    out = block(x)
    assert out.shape == x.shape
    for b in range(2):
        assert (out[b:b + 1] - isa_reference(block, x[b:b + 1])).abs().max() < 1e-8


def test_return_attention_gives_the_same_output_and_rows_summing_to_one():
    block = _randomise(InterlacedSparseAttention(6, 4, (2, 2)))
    x = torch.randn(1, 6, 4, 4, dtype=torch.float64)
    out, weights = block.global_relation(x, x, return_attention=True)
    assert torch.allclose(out, block.global_relation(x, x), atol=1e-12) and weights.shape == (1, 16, 16)
    assert torch.allclose(weights.sum(-1), torch.ones(1, 16, dtype=torch.float64))


def test_bad_down_factor_is_refused():
    with pytest.raises(ValueError, match="down_factor must be two positive ints"):
        InterlacedSparseAttention(6, 4, (0, 2))
