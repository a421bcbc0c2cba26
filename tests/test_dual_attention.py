"""DANet PAM/CAM against loop references written from the paper's equations, and the DANet head."""
import pytest
import torch

from segattn.models.attention.dual import ChannelAttention, PositionAttention, _position_attend
from segattn.models.heads.danet import DANetHead
from reference_check import assert_matches_reference

B, C, H, W = 2, 16, 6, 5


def _pointwise(conv, vec):
    """A 1x1 conv applied to one position's feature vector."""
    return conv.weight[:, :, 0, 0] @ vec + conv.bias


def pam_reference(m: PositionAttention, x):
    """out_i = gamma * sum_j [exp(q_i.k_j) / sum_j' exp(q_i.k_j')] v_j + x_i, one position at a time."""
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        feats = [x[b, :, i, j] for i in range(x.shape[2]) for j in range(x.shape[3])]
        q = [_pointwise(m.query_conv, f) for f in feats]
        k = [_pointwise(m.key_conv, f) for f in feats]
        v = [_pointwise(m.value_conv, f) for f in feats]
        for n, f in enumerate(feats):
            e = [torch.exp(torch.dot(q[n], k_j)) for k_j in k]
            z = sum(e)
            agg = sum(e_j / z * v_j for e_j, v_j in zip(e, v))
            out[b, :, n // x.shape[3], n % x.shape[3]] = m.gamma * agg + f
    return out


def cam_reference(m: ChannelAttention, x):
    """E_ij = sum_n x_i[n] x_j[n]; a_ij = softmax_j(max_k E_ik - E_ij); out_i = gamma * sum_j a_ij x_j + x_i."""
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        rows = [x[b, c].flatten() for c in range(x.shape[1])]
        for i, r_i in enumerate(rows):
            e = [torch.dot(r_i, r_j) for r_j in rows]
            top = max(e)
            num = [torch.exp(top - e_j) for e_j in e]
            z = sum(num)
            agg = sum(n_j / z * r_j for n_j, r_j in zip(num, rows))
            out[b, i] = (m.gamma * agg + r_i).view(x.shape[2], x.shape[3])
    return out


def _check_against_reference(module, reference, x):
    assert_matches_reference(module, lambda t: reference(module, t), x)


def test_pam_matches_reference_forward_and_backward():
    torch.manual_seed(0)
    m = PositionAttention(C).double()
    with torch.no_grad():
        m.gamma.fill_(0.7)
        m.query_conv.weight.mul_(3.0)  # sharper, non-uniform attention
    _check_against_reference(m, pam_reference, torch.randn(B, C, H, W, dtype=torch.float64))


def test_cam_matches_reference_forward_and_backward():
    torch.manual_seed(1)
    m = ChannelAttention().double()
    with torch.no_grad():
        m.gamma.fill_(-0.6)
    _check_against_reference(m, cam_reference, 0.3 * torch.randn(B, C, H, W, dtype=torch.float64))


def test_cam_uses_max_minus_energy():
    """The official energy rewrite makes CAM favour the *least* similar channels: the softmax(E) variant differs."""
    torch.manual_seed(2)
    m = ChannelAttention().double()
    with torch.no_grad():
        m.gamma.fill_(1.0)
    x = 0.3 * torch.randn(1, C, H, W, dtype=torch.float64)
    feats = x.flatten(2)
    energy = feats @ feats.transpose(1, 2)
    wrong = (energy.softmax(-1) @ feats).view_as(x) + x
    right = ((-energy).softmax(-1) @ feats).view_as(x) + x
    torch.testing.assert_close(m(x), right)
    assert not torch.allclose(m(x), wrong, atol=1e-3)


BLOCKS = pytest.mark.parametrize("make", [lambda: PositionAttention(C), ChannelAttention], ids=["pam", "cam"])


@BLOCKS
def test_zero_gamma_is_identity(make):
    module = make()
    x = torch.randn(B, C, H, W)
    assert torch.equal(module(x), x)


def test_pam_is_permutation_equivariant():
    torch.manual_seed(3)
    m = PositionAttention(C).double()
    with torch.no_grad():
        m.gamma.fill_(0.9)
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    perm = torch.randperm(H * W)

    def permute(t):
        return t.flatten(2)[:, :, perm].view_as(t)

    torch.testing.assert_close(m(permute(x)), permute(m(x)))
    assert not torch.allclose(m(x), x)  # the check above is not vacuous


@BLOCKS
def test_bf16_autocast_runs_and_stays_close(make):
    torch.manual_seed(4)
    module = make()
    with torch.no_grad():
        module.gamma.fill_(0.5)
    x = torch.randn(B, C, H, W)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = module(x)
    assert torch.isfinite(low).all()
    term = module(x) - x  # the attention term: the residual x alone would pass any closeness test
    assert term.abs().max() > 0.1
    torch.testing.assert_close(low.float() - x, term, rtol=0.05, atol=0.05 * term.abs().max().item())


def test_pam_split_heads_path_equals_direct_path():
    """The value split into d-wide heads (used in fp16/bf16) gives the same values and gradients."""
    torch.manual_seed(6)
    q = torch.randn(2, H * W, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, H * W, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, H * W, 16, dtype=torch.float64, requires_grad=True)
    direct = _position_attend(q, k, v, split_heads=False)
    split = _position_attend(q, k, v, split_heads=True)
    torch.testing.assert_close(split, direct)
    weight = torch.randn_like(direct)
    for a, b in zip(torch.autograd.grad((direct * weight).sum(), [q, k, v]), torch.autograd.grad((split * weight).sum(), [q, k, v])):
        torch.testing.assert_close(a, b)


def test_pam_needs_eight_channels():
    with pytest.raises(ValueError, match="in_channels >= 8"):
        PositionAttention(4)


def test_danet_head_outputs_and_loss_weights():
    torch.manual_seed(5)
    head = DANetHead(C, num_classes=3, channels=8, pam_weight=0.3, cam_weight=0.2)
    assert head.loss_weights == {"pam": 0.3, "cam": 0.2}
    x = torch.randn(B, C, H, W)
    out = head(x)
    assert set(out) == {"out", "pam", "cam"}
    assert all(v.shape == (B, 3, H, W) for v in out.values())
    sum(v.sum() for v in out.values()).backward()
    assert head.sa.gamma.grad is not None and head.sc.gamma.grad is not None
    head.eval()
    out = head(x)
    assert set(out) == {"out"} and out["out"].shape == (B, 3, H, W)
