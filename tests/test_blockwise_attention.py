"""Blockwise softmax attention against the explicit ``softmax(scale q k^T) v``, and what it keeps for backward."""
import pytest
import torch

from segattn.models.attention import blockwise
from segattn.models.attention.blockwise import attend, blockwise_attention
from segattn.models.attention.dual import PositionAttention
from segattn.models.attention.non_local import NonLocal2d


def _explicit(q, k, v, scale):
    return torch.softmax(scale * q @ k.transpose(1, 2), -1) @ v


def _inputs(b=2, n=13, m=11, d=4, c=6, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, size, width, dtype=dtype, generator=gen).requires_grad_() for size, width in ((n, d), (m, d), (m, c))]


@pytest.mark.parametrize("block_elements", [2 * 11 * 5, 1 << 22])  # blocks of 5, 5 and 3 queries; one block
def test_matches_explicit_softmax_forward_and_gradients(block_elements, monkeypatch):
    monkeypatch.setattr(blockwise, "BLOCK_ELEMENTS", block_elements)
    q, k, v = _inputs()
    grad = torch.randn(2, 13, 6, dtype=torch.float64)
    out, ref = blockwise_attention(q, k, v, 0.7), _explicit(q, k, v, 0.7)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(out, (q, k, v), grad), torch.autograd.grad(ref, (q, k, v), grad)):
        assert b.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradcheck(monkeypatch):
    monkeypatch.setattr(blockwise, "BLOCK_ELEMENTS", 2 * 5 * 2)
    q, k, v = _inputs(n=5, m=5, d=3, c=4)
    assert torch.autograd.gradcheck(lambda *t: blockwise_attention(*t, 1.3), (q, k, v))


def test_bf16_attention_term_stays_close_to_fp32():
    q, k, v = _inputs(b=1, n=64, m=64, d=8, c=32, dtype=torch.float32)
    ref = _explicit(q, k, v, 1.0)
    out = blockwise_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), 1.0)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0, atol=0.05 * ref.abs().max().item())


def test_keeps_no_map_for_backward():
    """Saved: q, k and v; the explicit formula keeps the N x M weights too."""
    q, k, v = _inputs(b=1, n=300, m=300, d=4, c=8, dtype=torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        blockwise_attention(q, k, v, 1.0)
    assert sum(saved) == q.numel() + k.numel() + v.numel() < 300 * 300


def test_dispatch_uses_sdpa_for_equal_widths_only(monkeypatch):
    calls = []
    monkeypatch.setattr(blockwise, "blockwise_attention", lambda *a: calls.append(a) or _explicit(*a))
    q, k, v = _inputs(d=6, c=6)
    torch.testing.assert_close(attend(q, k, v, 0.5), _explicit(q, k, v, 0.5))
    assert not calls
    q, k, v = _inputs(d=4, c=6)
    attend(q, k, v, 0.5)
    assert len(calls) == 1


@pytest.mark.parametrize("make", [lambda: PositionAttention(16), lambda: NonLocal2d(16, mode="gaussian")])
def test_blocks_on_cpu_equal_their_explicit_attention(make, monkeypatch):
    """PAM and gaussian non-local take the blockwise path on the CPU; it equals their explicit map path."""
    monkeypatch.setattr(blockwise, "BLOCK_ELEMENTS", 2 * 30 * 7)  # several query blocks
    torch.manual_seed(0)
    block = make().double()
    for p in block.parameters():  # gates and output BN away from zero, so the attention term counts
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 16, 5, 6, dtype=torch.float64, requires_grad=True)
    out = block(x)
    ref, _ = block(x, return_attention=True)  # the explicit HW x HW path
    torch.testing.assert_close(out - x, ref - x, rtol=1e-10, atol=1e-12)
    g = torch.randn_like(out)
    for a, b in zip(torch.autograd.grad(out, [x, *block.parameters()], g, allow_unused=True),
                    torch.autograd.grad(ref, [x, *block.parameters()], g, allow_unused=True)):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
