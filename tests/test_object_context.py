"""ObjectContextBlock (OCRNet) against a loop reference written from the OCR paper's equations (float64)."""
import math

import torch

from segattn.models.attention.object_context import ObjectContextBlock


def _at(module, vector):
    """A 1x1 layer stack applied to one feature vector."""
    return module(vector.view(1, -1, 1, 1))[0, :, 0, 0]


def ocr_reference(block, x, m):
    """One image: ``f_k = sum_i softmax_i(m_ki) x_i``; ``w_ik = softmax_k(phi(x_i) . psi(f_k) / sqrt(d))``;
    ``y_i = rho(sum_k w_ik delta(f_k))``; ``out_i = g([y_i; x_i])``."""
    c, h, w = x.shape[1:]
    pixels = [x[0, :, i, j] for i in range(h) for j in range(w)]
    regions = []
    for k in range(m.shape[1]):
        logits = torch.stack([m[0, k, i, j] for i in range(h) for j in range(w)])
        e = torch.exp(logits - logits.max())
        regions.append(sum(a * p for a, p in zip(e / e.sum(), pixels)))
    att = block.attention
    d = att.query_project[-1].conv.out_channels
    keys = [_at(att.key_project, f) for f in regions]
    values = [_at(att.value_project, f) for f in regions]
    out = torch.empty_like(x)
    for n, p in enumerate(pixels):
        q = _at(att.query_project, p)
        e = torch.stack([torch.dot(q, k) / math.sqrt(d) for k in keys])
        a = torch.exp(e - e.max())
        a = a / a.sum()
        y = _at(att.out_project, sum(a_k * v for a_k, v in zip(a, values)))
        out[0, :, n // w, n % w] = _at(block.bottleneck, torch.cat([y, p]))
    return out


def test_object_context_matches_loop_reference():
    torch.manual_seed(0)
    block = ObjectContextBlock(6, 4)
    with torch.no_grad():
        for mod in block.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5), mod.bias.normal_(), mod.running_mean.normal_(), mod.running_var.uniform_(0.5, 2)
    block = block.double().eval()
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    m = torch.randn(2, 3, 5, 7, dtype=torch.float64) * 3
    out = block(x, m)
    assert out.shape == x.shape
    for b in range(2):
        assert (out[b:b + 1] - ocr_reference(block, x[b:b + 1], m[b:b + 1])).abs().max() < 1e-8
    _, relation = block.attention(x, torch.zeros(2, 6, 3, 1, dtype=torch.float64), return_attention=True)
    assert relation.shape == (2, 35, 3)
