"""PSANet: the pure-PyTorch PSAMask against a transcription of mmcv's collect / distribute loops, and the
point-wise spatial attention against a loop reference of its aggregation (float64)."""
import pytest
import torch
import torch.nn.functional as F

from segattn.models.attention.point_wise_spatial import PointwiseSpatialAttention, psa_mask


def psa_mask_loops(mask, mask_size, mode):
    """mmcv's kernel semantics: for each position (h, w) and each mask cell (i, j) whose offset lands inside the map,
    collect writes ``out[(h + i - hh) W + (w + j - hw), h W + w]``, distribute ``out[h W + w, (h + i - hh) W + ...]``."""
    b, _, H, W = mask.shape
    mh, mw = mask_size
    hh, hw = (mh - 1) // 2, (mw - 1) // 2
    out = torch.zeros(b, H * W, H, W, dtype=mask.dtype)
    flat = out.view(b, H * W, H * W)
    for n in range(b):
        for h in range(H):
            for w in range(W):
                for i in range(max(0, hh - h), min(mh, H + hh - h)):
                    for j in range(max(0, hw - w), min(mw, W + hw - w)):
                        src, dst = (h + i - hh) * W + (w + j - hw), h * W + w
                        value = mask[n, i * mw + j, h, w]
                        if mode == "collect":
                            flat[n, src, dst] = value
                        else:
                            flat[n, dst, src] = value
    return out


@pytest.mark.parametrize("mode", ["collect", "distribute"])
@pytest.mark.parametrize("size,mask_size", [((4, 5), (7, 9)), ((6, 7), (3, 5)), ((5, 5), (4, 6))])
def test_psa_mask_matches_mmcv_loops(mode, size, mask_size):
    torch.manual_seed(0)
    mask = torch.randn(2, mask_size[0] * mask_size[1], *size, dtype=torch.float64)
    assert torch.equal(psa_mask(mask, mask_size, mode), psa_mask_loops(mask, mask_size, mode))


def test_psa_mask_refuses_wrong_channels_and_modes():
    with pytest.raises(ValueError, match="mask has 10 channels, mask_size 3x3 needs 9"):
        psa_mask(torch.zeros(1, 10, 4, 4), (3, 3), "collect")
    with pytest.raises(ValueError, match="mode must be 'collect' or 'distribute'"):
        psa_mask(torch.zeros(1, 9, 4, 4), (3, 3), "both")


def _randomised(module):
    torch.manual_seed(4)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2)
    return module.double().eval()


def aggregate_reference(r, m, mask_size, gathers):
    """``y_p = sum_q a_qp r_q``, ``a_.p`` the softmax over all q of the mask value linking p and q (0 outside the
    window): collect reads p's own mask at offset q - p; distribute reads q's mask at offset p - q."""
    _, c, h, w = r.shape
    mh, mw = mask_size
    positions = [(i, j) for i in range(h) for j in range(w)]
    y = torch.zeros_like(r)
    for p in positions:
        logits = []
        for q in positions:
            owner, di, dj = (p, q[0] - p[0], q[1] - p[1]) if gathers else (q, p[0] - q[0], p[1] - q[1])
            a, b = di + (mh - 1) // 2, dj + (mw - 1) // 2
            inside = 0 <= a < mh and 0 <= b < mw
            logits.append(m[0, a * mw + b, owner[0], owner[1]] if inside else torch.zeros((), dtype=r.dtype))
        weights = torch.stack(logits).softmax(0)
        y[0, :, p[0], p[1]] = sum(wt * r[0, :, q[0], q[1]] for wt, q in zip(weights, positions))
    return y


@pytest.mark.parametrize("size,shrink", [((5, 7), 1), ((7, 9), 2), ((6, 7), 2)])
def test_bi_direction_attention_matches_loop_reference(size, shrink):
    block = _randomised(PointwiseSpatialAttention(6, 4, mask_size=(5, 7), shrink_factor=shrink, align_corners=True))
    x = torch.randn(1, 6, *size, dtype=torch.float64)
    h, w = size
    align = True if shrink == 1 else bool(h % shrink and w % shrink)
    small = (h, w) if shrink == 1 else (((h - 1) // shrink + 1, (w - 1) // shrink + 1) if align else (h // shrink, w // shrink))
    ys = []
    for reduce, attention, gathers in ((block.reduce, block.attention, True), (block.reduce_p, block.attention_p, False)):
        r = reduce(x)
        if shrink != 1:
            r = F.interpolate(r, size=small, mode="bilinear", align_corners=align)
        ys.append(aggregate_reference(r, attention(r), (5, 7), gathers))
    expected = F.interpolate(block.proj(torch.cat(ys, 1)), size=size, mode="bilinear", align_corners=align)
    assert (block(x) - expected).abs().max() < 1e-8


def test_single_branch_and_compact_variants_run_and_differ():
    x = torch.randn(1, 6, 5, 5, dtype=torch.float64)
    outs = [_randomised(PointwiseSpatialAttention(6, 4, mask_size=mask, psa_type=kind, compact=compact))(x)
            for kind, compact, mask in (("collect", False, (5, 5)), ("distribute", False, (5, 5)), ("collect", True, (3, 3)))]
    assert all(o.shape == x.shape for o in outs) and (outs[0] - outs[1]).abs().max() > 1e-6
    with pytest.raises(ValueError, match="psa_type must be one of"):
        PointwiseSpatialAttention(6, 4, psa_type="both")


@pytest.mark.parametrize("size", [(7, 9), (6, 7), (8, 8), (1, 5)])
@pytest.mark.parametrize("shrink", [1, 2, 3])
def test_export_path_equals_the_eager_one(monkeypatch, size, shrink):
    """Under export the resizes are matmuls whose sizes and align_corners stay symbolic; same values."""
    import segattn.models.attention.point_wise_spatial as psa

    block = _randomised(PointwiseSpatialAttention(6, 4, mask_size=(5, 5), shrink_factor=shrink, align_corners=True))
    x = torch.randn(2, 6, *size, dtype=torch.float64)
    expected = block(x)
    monkeypatch.setattr(psa, "recording", lambda: True)
    assert (block(x) - expected).abs().max() < 1e-12
