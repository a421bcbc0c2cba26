"""DisentangledNonLocal2d against a loop reference written from Yin et al.'s equations (float64)."""
import itertools
import math

import pytest
import torch

from segattn.models.attention.disentangled_non_local import DNL_MODES, DisentangledNonLocal2d
from segattn.models.attention.non_local import NonLocal2d
from reference_check import assert_matches_reference

B, C, H, W = 2, 16, 5, 6


def _pointwise(conv, vec):
    return conv.weight[:, :, 0, 0] @ vec + (0 if conv.bias is None else conv.bias)


def _bn(bn, v):
    return (v - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def dnl_reference(m: DisentangledNonLocal2d, x, mode):
    """``z_i = x_i + BN(W_z (y_i + u))``: whitened pairwise term with temperature, unary term; by position."""
    inter = m.g.out_channels
    positions = list(itertools.product(range(x.shape[2]), range(x.shape[3])))
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        xs = [x[b, :, i, j] for i, j in positions]
        theta = [_pointwise(m.theta, v) for v in xs]
        phi = [_pointwise(m.phi, v) for v in xs]
        g = [_pointwise(m.g, v) for v in xs]
        mu_q, mu_k = sum(theta) / len(theta), sum(phi) / len(phi)
        theta, phi = [t - mu_q for t in theta], [p - mu_k for p in phi]
        mask = torch.stack([_pointwise(m.conv_mask, v)[0] for v in xs])
        unary = torch.exp(mask - mask.max())
        unary = unary / unary.sum()
        u = sum(w * v for w, v in zip(unary, g))
        for p, (i, j) in enumerate(positions):
            dots = torch.stack([torch.dot(theta[p], k) for k in phi])
            if mode == "embedded_gaussian":
                e = torch.exp(dots / math.sqrt(inter) / m.temperature - (dots / math.sqrt(inter) / m.temperature).max())
                f = e / e.sum()
            else:
                f = dots / len(phi)
            y = sum(f_j * v for f_j, v in zip(f, g))
            out[b, :, i, j] = xs[p] + _bn(m.conv_out.bn, _pointwise(m.conv_out.conv, y + u))
    return out


def _randomised(mode, use_sdpa=True, temperature=0.5, seed=0):
    """Float64, eval mode, non-zero output BN; temperature 0.5 (not 0.05) keeps the softmax from saturating."""
    torch.manual_seed(seed)
    m = DisentangledNonLocal2d(C, mode=mode, temperature=temperature, use_sdpa=use_sdpa).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * (0.4 if p.dim() > 1 else 0.2))
        m.conv_out.bn.running_mean.uniform_(-0.2, 0.2)
        m.conv_out.bn.running_var.uniform_(0.5, 1.5)
    return m


@pytest.mark.parametrize("mode,use_sdpa", [(m, s) for m in DNL_MODES for s in (True, False)])
def test_matches_reference_forward_and_backward(mode, use_sdpa):
    m = _randomised(mode, use_sdpa)
    x = 0.5 * torch.randn(B, C, H, W, dtype=torch.float64)
    assert_matches_reference(m, lambda t: dnl_reference(m, t, mode), x)
    with torch.no_grad():
        assert (m(x) - dnl_reference(m, x, mode)).abs().max() < 1e-8


def test_mmseg_temperature_matches_reference_and_the_map_is_returned():
    m = _randomised("embedded_gaussian", temperature=0.05)
    x = 0.2 * torch.randn(B, C, H, W, dtype=torch.float64)
    with torch.no_grad():
        out, weights = m(x, return_attention=True)
        assert (out - dnl_reference(m, x, "embedded_gaussian")).abs().max() < 1e-8
    assert weights.shape == (B, H * W, H * W)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H * W, dtype=torch.float64))


def test_whitening_and_the_unary_term_matter():
    """Against the plain non-local block with the same weights: whitening, temperature and unary term change it."""
    m = _randomised("embedded_gaussian")
    plain = NonLocal2d(C).double().eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("conv_mask")})
    x = 0.5 * torch.randn(B, C, H, W, dtype=torch.float64)
    with torch.no_grad():
        assert (m(x) - plain(x)).abs().max() > 1e-2


def test_fresh_block_is_identity():
    m = DisentangledNonLocal2d(C)
    x = torch.randn(B, C, H, W)
    assert torch.equal(m(x), x)


@pytest.mark.parametrize("kwargs,message", [
    (dict(mode="concatenation"), "mode must be one of"), (dict(temperature=0.0), "temperature must be > 0")])
def test_bad_options_are_one_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DisentangledNonLocal2d(C, **kwargs)


def test_capture_diagnostics_and_panels_read_the_pairwise_map():
    from helpers.tiny_models import tiny_model

    from segattn.diagnostics.measure import measure_on_batch
    from segattn.models.heads.dnl import DNLHead
    from segattn.visualization.capture import capture_attention
    from segattn.visualization.grids import point_panels

    torch.manual_seed(0)
    head = DNLHead(16, 3, channels=8).eval()
    x = torch.randn(1, 16, 4, 6)
    with capture_attention(head) as records, torch.no_grad():
        head(x)
    with torch.no_grad():
        _, expected = head.dnl_block(head.conv_in(x), return_attention=True)
    (call,) = records["dnl_block"]
    assert call.kind == "disentangled_non_local" and call.key_size == call.size == (4, 6)
    torch.testing.assert_close(call.weights, expected)
    (panel,) = point_panels(records, (17, 30), (32, 48), "p")
    assert "disentangled non-local" in panel.title and panel.heat[::8, ::8].sum() == pytest.approx(1.0, abs=1e-5)
    stats = measure_on_batch(tiny_model("dnl"), torch.randn(1, 3, 64, 64))
    assert {"attention/head.dnl_block/entropy", "attention/head.dnl_block/distance_px"} <= set(stats)
