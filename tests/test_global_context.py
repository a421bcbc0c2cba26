"""GlobalContextBlock against a loop reference written from Cao et al.'s equations (float64)."""
import itertools

import pytest
import torch

from segattn.models.attention.global_context import GlobalContextBlock
from reference_check import assert_matches_reference

B, C, H, W = 2, 16, 5, 7
FUSIONS = [("channel_add",), ("channel_mul",), ("channel_add", "channel_mul")]


def _transform_reference(seq, c):
    """``W_2 ReLU(LN(W_1 c))`` for one context vector ``c`` (LayerNorm over the P channels, biased variance)."""
    conv1, ln, conv2 = seq[0], seq[1], seq[3]
    t = conv1.weight[:, :, 0, 0] @ c + conv1.bias
    mean, var = t.mean(), ((t - t.mean()) ** 2).mean()
    t = (t - mean) / torch.sqrt(var + ln.eps) * ln.weight.flatten() + ln.bias.flatten()
    return conv2.weight[:, :, 0, 0] @ torch.relu(t) + conv2.bias


def global_context_reference(m: GlobalContextBlock, x):
    """``c = sum_j softmax_j(w . x_j + b) x_j`` (or the mean), ``z_i = x_i * sigmoid(T_mul c) + T_add c``, by position."""
    out = torch.empty_like(x)
    positions = list(itertools.product(range(x.shape[2]), range(x.shape[3])))
    for b in range(x.shape[0]):
        if m.pooling_type == "att":
            w, bias = m.conv_mask.weight.flatten(), m.conv_mask.bias[0]
            logits = torch.stack([torch.dot(w, x[b, :, i, j]) + bias for i, j in positions])
            a = torch.exp(logits - logits.max())
            a = a / a.sum()
            c = sum(a_p * x[b, :, i, j] for a_p, (i, j) in zip(a, positions))
        else:
            c = sum(x[b, :, i, j] for i, j in positions) / len(positions)
        scale = torch.sigmoid(_transform_reference(m.channel_mul_conv, c)) if m.channel_mul_conv is not None else 1.0
        shift = _transform_reference(m.channel_add_conv, c) if m.channel_add_conv is not None else 0.0
        for i, j in positions:
            out[b, :, i, j] = x[b, :, i, j] * scale + shift
    return out


def _randomised(pooling, fusions, seed=0):
    torch.manual_seed(seed)
    m = GlobalContextBlock(C, ratio=0.25, pooling_type=pooling, fusion_types=fusions).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return m


@pytest.mark.parametrize("pooling,fusions", [(p, f) for p in ("att", "avg") for f in FUSIONS])
def test_matches_reference_forward_and_backward(pooling, fusions):
    m = _randomised(pooling, fusions)
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    assert_matches_reference(m, lambda t: global_context_reference(m, t), x)
    assert (m(x) - global_context_reference(m, x)).abs().max() < 1e-8


def test_fresh_channel_add_block_is_identity_and_the_layout_is_mmcvs():
    m = GlobalContextBlock(C)
    x = torch.randn(B, C, H, W)
    assert torch.equal(m(x), x)
    assert sorted(k for k in m.state_dict()) == [
        "channel_add_conv.0.bias", "channel_add_conv.0.weight", "channel_add_conv.1.bias", "channel_add_conv.1.weight",
        "channel_add_conv.3.bias", "channel_add_conv.3.weight", "conv_mask.bias", "conv_mask.weight"]
    assert m.channel_add_conv[0].out_channels == C // 4


def test_the_context_depends_on_the_attention_map():
    m = _randomised("att", ("channel_add",))
    x = torch.randn(1, C, H, W, dtype=torch.float64)
    with torch.no_grad():
        before = m(x)
        m.conv_mask.weight.mul_(3.0)
        assert (m(x) - before).abs().max() > 1e-3


@pytest.mark.parametrize("kwargs,message", [
    (dict(pooling_type="max"), "pooling_type must be one of"),
    (dict(fusion_types=()), "fusion_types must be a non-empty subset"),
    (dict(fusion_types=("channel_cat",)), "fusion_types must be a non-empty subset"),
    (dict(ratio=0.01), "leaves no channels"),
])
def test_bad_options_are_one_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GlobalContextBlock(C, **kwargs)
