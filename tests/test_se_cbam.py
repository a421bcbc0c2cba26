"""SE and CBAM against loop references written from their papers' equations."""
import itertools

import pytest
import torch

from segattn.models.attention.cbam import CBAM
from segattn.models.attention.se import SqueezeExcitation
from reference_check import assert_matches_reference

B, C, H, W = 2, 16, 6, 5


def _pointwise(conv, vec):
    """A 1x1 conv applied to one feature vector."""
    out = conv.weight[:, :, 0, 0] @ vec
    return out if conv.bias is None else out + conv.bias


def se_reference(m: SqueezeExcitation, x):
    """s = sigmoid(W_2 ReLU(W_1 z)), z_c = mean of channel c; out_c = s_c x_c."""
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        z = torch.stack([x[b, c].sum() / (x.shape[2] * x.shape[3]) for c in range(x.shape[1])])
        s = torch.sigmoid(_pointwise(m.fc2, torch.relu(_pointwise(m.fc1, z))))
        for c in range(x.shape[1]):
            out[b, c] = s[c] * x[b, c]
    return out


def cbam_reference(m: CBAM, x):
    """M_c = sigmoid(MLP(avg) + MLP(max)); x' = M_c x; M_s = sigmoid(conv_kxk([mean_c x'; max_c x'])); out = M_s x'."""
    mlp_in, mlp_out = m.mlp[0], m.mlp[2]
    k = m.spatial.kernel_size[0]
    r = k // 2
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        avg = torch.stack([x[b, c].mean() for c in range(x.shape[1])])
        mx = torch.stack([x[b, c].max() for c in range(x.shape[1])])
        gate = torch.sigmoid(_pointwise(mlp_out, torch.relu(_pointwise(mlp_in, avg))) + _pointwise(mlp_out, torch.relu(_pointwise(mlp_in, mx))))
        xc = torch.stack([gate[c] * x[b, c] for c in range(x.shape[1])])
        pooled = torch.stack([xc.mean(0), xc.max(0).values])  # 2 x H x W, [avg; max]
        for i, j in itertools.product(range(x.shape[2]), range(x.shape[3])):
            acc = torch.zeros((), dtype=x.dtype)
            for di, dj in itertools.product(range(k), range(k)):
                a, c = i + di - r, j + dj - r
                if 0 <= a < x.shape[2] and 0 <= c < x.shape[3]:  # zero padding
                    acc = acc + torch.dot(m.spatial.weight[0, :, di, dj], pooled[:, a, c])
            out[b, :, i, j] = torch.sigmoid(acc) * xc[:, i, j]
    return out


def _check_against_reference(module, reference, x):
    assert_matches_reference(module, lambda t: reference(module, t), x)


def test_se_matches_reference_forward_and_backward():
    torch.manual_seed(0)
    m = SqueezeExcitation(C, reduction=4).double()
    assert (m.fc1.out_channels, m.fc2.out_channels) == (8, C)
    _check_against_reference(m, se_reference, torch.randn(B, C, H, W, dtype=torch.float64))


@pytest.mark.parametrize("kernel_size", [7, 3])
def test_cbam_matches_reference_forward_and_backward(kernel_size):
    torch.manual_seed(1)
    m = CBAM(C, reduction=2, kernel_size=kernel_size).double()
    with torch.no_grad():
        m.spatial.weight.mul_(5.0)  # a spatial gate far from constant
    _check_against_reference(m, cbam_reference, torch.randn(B, C, H, W, dtype=torch.float64))


def test_squeeze_width():
    assert SqueezeExcitation(2048).fc1.out_channels == 128
    assert SqueezeExcitation(64).fc1.out_channels == 8  # floor of 8 (64 // 16 = 4)
    assert CBAM(256).mlp[0].out_channels == 16


def test_cbam_gates_channels_before_space():
    """Spatial-then-channel gating gives different outputs, so the order is observable."""
    torch.manual_seed(2)
    m = CBAM(C, reduction=2).double()
    with torch.no_grad():
        m.spatial.weight.mul_(5.0)
    x = torch.randn(1, C, H, W, dtype=torch.float64)
    pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    xs = x * torch.sigmoid(m.spatial(pooled))
    swapped = xs * torch.sigmoid(m.mlp(xs.mean((2, 3), keepdim=True)) + m.mlp(xs.amax((2, 3), keepdim=True)))
    assert not torch.allclose(m(x), swapped, atol=1e-4)


@pytest.mark.parametrize("make", [lambda: SqueezeExcitation(C), lambda: CBAM(C)], ids=["se", "cbam"])
def test_bf16_autocast_runs_and_stays_close(make):
    torch.manual_seed(3)
    m = make()
    x = torch.randn(B, C, H, W)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = m(x)
    assert low.shape == x.shape and torch.isfinite(low).all()
    term = m(x) - x  # the attention term: the residual x alone would pass any closeness test
    assert term.abs().max() > 0.1
    torch.testing.assert_close(low.float() - x, term, rtol=0.05, atol=0.05 * term.abs().max().item())


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="odd"):
        CBAM(C, kernel_size=4)
    with pytest.raises(ValueError, match="reduction >= 1"):
        SqueezeExcitation(C, reduction=0)
