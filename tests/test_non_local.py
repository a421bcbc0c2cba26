"""NonLocal2d against loop references written from Wang et al.'s equations, and the non-local head."""
import itertools
import math

import pytest
import torch

from segattn.models.attention.non_local import MODES, NonLocal2d
from segattn.models.heads.nonlocal_head import NonLocalHead
from reference_check import assert_matches_reference

B, C, H, W = 2, 16, 6, 5


def _pointwise(conv, vec):
    """A 1x1 conv applied to one position's feature vector."""
    out = conv.weight[:, :, 0, 0] @ vec
    return out if conv.bias is None else out + conv.bias


def _maxpool2(fmap):
    """2x2 max-pooling, stride 2, of a C x H x W map, one window at a time (odd borders dropped)."""
    out = torch.empty(fmap.shape[0], fmap.shape[1] // 2, fmap.shape[2] // 2, dtype=fmap.dtype)
    for a, b in itertools.product(range(out.shape[1]), range(out.shape[2])):
        out[:, a, b] = fmap[:, 2 * a : 2 * a + 2, 2 * b : 2 * b + 2].amax((1, 2))
    return out


def non_local_reference(m: NonLocal2d, x, mode, sub_sample, use_scale):
    """z_i = x_i + BN(W_z y_i), y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j), position by position (BN in eval mode)."""
    inter = m.g.out_channels
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        def embed(conv):  # a C' x H x W map of conv applied at every position (identity when conv is None)
            cols = [[x[b, :, i, j] if conv is None else _pointwise(conv, x[b, :, i, j]) for j in range(x.shape[3])] for i in range(x.shape[2])]
            return torch.stack([torch.stack(row, -1) for row in cols], -2)

        embedded = mode != "gaussian"
        theta = embed(m.theta if embedded else None)
        phi, g = embed(m.phi if embedded else None), embed(m.g)
        if sub_sample:
            phi, g = _maxpool2(phi), _maxpool2(g)
        keys = [phi[:, a, c] for a in range(phi.shape[1]) for c in range(phi.shape[2])]
        values = [g[:, a, c] for a in range(g.shape[1]) for c in range(g.shape[2])]
        n = len(keys)
        y = torch.empty(inter, x.shape[2], x.shape[3], dtype=x.dtype)
        for i, j in itertools.product(range(x.shape[2]), range(x.shape[3])):
            t = theta[:, i, j]
            if mode == "gaussian":
                f = [torch.exp(torch.dot(t, k)) for k in keys]
                norm = sum(f)
            elif mode == "embedded_gaussian":
                s = 1 / math.sqrt(inter) if use_scale else 1.0
                f = [torch.exp(s * torch.dot(t, k)) for k in keys]
                norm = sum(f)
            elif mode == "dot_product":
                f = [torch.dot(t, k) for k in keys]
                norm = n
            else:
                w = m.concat_project.weight.flatten()
                f = [torch.relu(torch.dot(w, torch.cat([t, k]))) for k in keys]
                norm = n
            y[:, i, j] = sum(f_j * v for f_j, v in zip(f, values)) / norm
        bn = m.conv_out.bn
        for i, j in itertools.product(range(x.shape[2]), range(x.shape[3])):
            wz_y = _pointwise(m.conv_out.conv, y[:, i, j])
            normed = (wz_y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
            out[b, :, i, j] = x[b, :, i, j] + normed
    return out


def _randomised(mode, sub_sample, use_scale=True, use_sdpa=True, seed=0):
    """A float64 block in eval mode with a non-zero output BN and embeddings large enough to matter."""
    torch.manual_seed(seed)
    m = NonLocal2d(C, mode=mode, sub_sample=sub_sample, use_scale=use_scale, use_sdpa=use_sdpa).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.dim() > 1 else 0.2))
        m.conv_out.bn.running_mean.uniform_(-0.2, 0.2)
        m.conv_out.bn.running_var.uniform_(0.5, 1.5)
    return m


CASES = [(mode, sub, sdpa) for mode in MODES for sub in (False, True) for sdpa in (True, False)]


@pytest.mark.parametrize("mode,sub_sample,use_sdpa", CASES)
def test_matches_reference_forward_and_backward(mode, sub_sample, use_sdpa):
    m = _randomised(mode, sub_sample, use_sdpa=use_sdpa)
    x = 0.5 * torch.randn(B, C, H, W, dtype=torch.float64)
    assert_matches_reference(m, lambda t: non_local_reference(m, t, mode, sub_sample, use_scale=True), x)


def test_embedded_gaussian_without_scale_matches_reference():
    m = _randomised("embedded_gaussian", False, use_scale=False)
    x = 0.5 * torch.randn(B, C, H, W, dtype=torch.float64)
    torch.testing.assert_close(m(x), non_local_reference(m, x, "embedded_gaussian", False, use_scale=False))
    scaled = _randomised("embedded_gaussian", False, use_scale=True)
    assert not torch.allclose(scaled(x), m(x))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sub_sample", [False, True])
def test_fresh_block_is_identity(mode, sub_sample):
    m = NonLocal2d(C, mode=mode, sub_sample=sub_sample)
    x = torch.randn(B, C, H, W)
    assert torch.equal(m(x), x)
    m.eval()
    assert torch.equal(m(x), x)


@pytest.mark.parametrize("mode", MODES)
def test_permutation_equivariant(mode):
    m = _randomised(mode, sub_sample=False, seed=1)
    x = 0.5 * torch.randn(B, C, H, W, dtype=torch.float64)
    perm = torch.randperm(H * W)

    def permute(t):
        return t.flatten(2)[:, :, perm].view_as(t)

    torch.testing.assert_close(m(permute(x)), permute(m(x)))
    assert not torch.allclose(m(x), x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sub_sample", [False, True])
def test_sdpa_and_matmul_paths_agree_in_fp32(mode, sub_sample):
    fast = _randomised(mode, sub_sample, use_sdpa=True, seed=2).float()
    slow = _randomised(mode, sub_sample, use_sdpa=False, seed=2).float()
    x = 0.5 * torch.randn(B, C, H, W, requires_grad=True)
    out_fast, out_slow = fast(x), slow(x)
    torch.testing.assert_close(out_fast, out_slow, rtol=1e-5, atol=1e-5)
    (g_fast,) = torch.autograd.grad(out_fast.square().sum(), x)
    (g_slow,) = torch.autograd.grad(out_slow.square().sum(), x)
    torch.testing.assert_close(g_fast, g_slow, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("use_sdpa", [True, False])
def test_bf16_autocast_runs_and_stays_close(mode, use_sdpa):
    m = _randomised(mode, sub_sample=False, use_sdpa=use_sdpa, seed=3).float()
    x = 0.5 * torch.randn(B, C, H, W)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = m(x)
    assert torch.isfinite(low).all()
    term = m(x) - x  # the attention term: the residual x alone would pass any closeness test
    assert term.abs().max() > 0.1
    torch.testing.assert_close(low.float() - x, term, rtol=0.05, atol=0.05 * term.abs().max().item())


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        NonLocal2d(C, mode="softmax")
    with pytest.raises(ValueError, match="reduction"):
        NonLocal2d(C, reduction=0)


@pytest.mark.parametrize("mode", MODES)
def test_head_output_shape(mode):
    head = NonLocalHead(C, num_classes=3, channels=8, mode=mode, sub_sample=True)
    assert head.loss_weights == {}
    x = torch.randn(B, C, H, W)
    out = head(x)
    assert set(out) == {"out"} and out["out"].shape == (B, 3, H, W)
    out["out"].sum().backward()
    assert head.nl_block.conv_out.bn.weight.grad.abs().sum() > 0
