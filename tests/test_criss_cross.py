"""Criss-cross attention against a loop-by-loop reference of the CCNet equations, and the RCCA head."""
import weakref
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segattn.models.attention import criss_cross
from segattn.models.attention.criss_cross import COMPILE_SAFE, CrissCrossAttention
from segattn.models.heads.ccnet import RCCAHead
from segattn.utils.profiling import peak_memory_bytes


def make_block(channels=16, gamma=0.7, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    block = CrissCrossAttention(channels).to(dtype)
    with torch.no_grad():
        block.gamma.fill_(gamma)
    return block


def reference(block, x):
    """Straight from the paper, one position u at a time: softmax over u's column (u excluded) and
    u's row (u included) of Q_u . K_i, then H'_u = gamma * sum_i A_ui V_i + H_u. Returns out, weights."""
    q, k, v = block.query_conv(x), block.key_conv(x), block.value_conv(x)
    b, _, h, w = x.shape
    outs, weights = [], []
    for n in range(b):
        for i in range(h):
            for j in range(w):
                cross = [(r, j) for r in range(h) if r != i] + [(i, c) for c in range(w)]
                energy = torch.stack([q[n, :, i, j] @ k[n, :, r, c] for r, c in cross])
                a = torch.softmax(energy, 0)
                agg = sum(a[m] * v[n, :, r, c] for m, (r, c) in enumerate(cross))
                outs.append(block.gamma * agg + x[n, :, i, j])
                weights.append(torch.cat([a[:i], a.new_zeros(1), a[i:]]))  # column with self = 0, then row
    out = torch.stack(outs).view(b, h, w, -1).permute(0, 3, 1, 2)
    return out, torch.stack(weights).view(b, h, w, h + w)


@pytest.mark.parametrize("shape,column_chunk", [((2, 16, 5, 7), 24), ((1, 16, 7, 4), 24), ((2, 16, 5, 7), 3)])
def test_matches_loop_reference_forward_and_gradients(shape, column_chunk, monkeypatch):
    monkeypatch.setattr(criss_cross, "CHUNK", column_chunk)  # 3: rows and columns in chunks of 3, 3 and 1
    block = make_block()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(shape, dtype=torch.float64)
    out, attn = block(x, return_attention=True)
    ref_out, ref_attn = reference(block, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(attn, ref_attn.detach(), rtol=1e-10, atol=1e-10)
    inputs = [x, *block.parameters()]
    grads = torch.autograd.grad(out, inputs, grad)
    ref_grads = torch.autograd.grad(ref_out, inputs, grad)
    assert all(g.abs().max() > 0 for g in ref_grads)
    for g, ref_g in zip(grads, ref_grads):
        torch.testing.assert_close(g, ref_g, rtol=1e-9, atol=1e-10)


def test_kept_projection_gives_the_recomputed_gradients():
    """recompute=False (the last pass of RCCA) keeps q/k/v for backward, which frees them once used:
    same values, same gradients as recomputing them."""
    block = make_block()
    x = torch.randn(2, 16, 5, 7, dtype=torch.float64, requires_grad=True)
    grad = torch.randn_like(x)
    inputs = [x, *block.parameters()]
    runs = []
    for recompute in (True, False):
        out = block(block(x), recompute=recompute)
        kept = out.grad_fn.kept
        if recompute:
            assert kept is None
        else:  # the second pass's q, k (C/8 each) and v, as (B, H, W, D)
            assert [tuple(t.shape) for t in kept] == [(2, 5, 7, 2 * 2), (2, 5, 7, 16)]
            alive = [weakref.ref(t) for t in kept]
            del kept
        runs.append((out, torch.autograd.grad(out, inputs, grad)))
        assert out.grad_fn.kept is None
        if not recompute:
            assert all(ref() is None for ref in alive)  # released by backward, not held by the graph
    (out_a, grads_a), (out_b, grads_b) = runs
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_kept_values_are_freed_before_the_backward_peak():
    """Keeping q/k/v in the last pass (RCCA's default) costs at most its q, k (C/4 channels) at the peak
    of a step: backward frees the kept v before it makes dv, the largest temporary."""
    block = make_block(channels=128, dtype=torch.float32)
    x = torch.randn(1, 128, 16, 16, requires_grad=True)
    grad = torch.randn_like(x)

    def peak(recompute_last: bool) -> float:
        def step():
            block(block(x), recompute=recompute_last).backward(grad)
        return peak_memory_bytes(step, torch.device("cpu")) / (x.numel() * 4)  # in feature maps

    assert 0.2 <= peak(False) - peak(True) <= 0.3


def test_gradcheck():
    block = make_block(channels=8)
    x = torch.randn(2, 8, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def _reach(block, recurrence, shape=(1, 16, 5, 7), u=(2, 3)):
    """Positions whose input changes the output at u after `recurrence` passes (through gradients)."""
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    out = x
    for _ in range(recurrence):
        out = block(out)
    out[0, :, u[0], u[1]].sum().backward()
    return x.grad[0].abs().sum(0) > 0


def test_one_pass_reaches_only_the_cross_two_passes_reach_everything():
    block = make_block()
    cross = torch.zeros(5, 7, dtype=torch.bool)
    cross[2, :] = True
    cross[:, 3] = True
    assert torch.equal(_reach(block, 1), cross)
    assert _reach(block, 2).all()


def test_zero_gamma_is_identity():
    block = make_block(gamma=0.0, dtype=torch.float32)
    assert torch.count_nonzero(CrissCrossAttention(16).gamma) == 0  # zero at initialisation
    x = torch.randn(2, 16, 5, 7)
    assert torch.equal(block(x), x)


def test_attention_weights_are_a_distribution_over_the_cross():
    block = make_block()
    _, attn = block(torch.randn(2, 16, 5, 7, dtype=torch.float64), return_attention=True)
    assert attn.shape == (2, 5, 7, 5 + 7)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 5, 7, dtype=torch.float64))
    column = attn[..., :5]
    assert torch.all(column.diagonal(0, 1, 3) == 0)  # u counted once, in the row part
    assert torch.all(attn[..., 5:] > 0)


@pytest.mark.parametrize("in_dtype", [torch.float32, torch.bfloat16])
def test_bf16_autocast_matches_fp32_with_fp32_softmax(in_dtype):
    block = make_block(dtype=torch.float32, gamma=0.5)
    x = torch.randn(2, 16, 5, 7)
    ref, ref_attn = block(x, return_attention=True)
    ref_grad = torch.autograd.grad(ref.sum(), block.value_conv.weight)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, attn = block(x.to(in_dtype), return_attention=True)
    assert out.dtype == in_dtype and attn.dtype == torch.float32
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 5, 7), rtol=0, atol=1e-6)  # bf16 softmax: ~1e-2
    torch.testing.assert_close(attn, ref_attn, rtol=0.05, atol=0.02)
    term = ref - x  # the attention term: the residual x alone would pass any closeness test
    assert term.abs().max() > 0.1
    torch.testing.assert_close(out.float() - x.to(in_dtype).float(), term, rtol=0.05, atol=0.05 * term.abs().max().item())
    grad = torch.autograd.grad(out.float().sum(), block.value_conv.weight)[0]
    assert grad.dtype == torch.float32
    torch.testing.assert_close(grad, ref_grad, rtol=0.05, atol=0.1)


def test_channels_last_input_and_torch_compile():
    block = make_block(dtype=torch.float32)
    x = torch.randn(2, 16, 5, 7)
    ref = block(x)
    torch.testing.assert_close(block(x.contiguous(memory_format=torch.channels_last)), ref)
    compiled = torch.compile(block, backend="aot_eager", fullgraph=COMPILE_SAFE)  # else: a graph break
    x_grad = x.clone().requires_grad_()
    out = compiled(x_grad)
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    torch.testing.assert_close(x_grad.grad, torch.autograd.grad(block(x.requires_grad_()).sum(), x)[0])


def test_wrong_input_raises_clear_error():
    with pytest.raises(ValueError, match=r"expected a \(B, 16, H, W\) tensor, got shape \(1, 8, 5, 5\)"):
        CrissCrossAttention(16)(torch.randn(1, 8, 5, 5))
    with pytest.raises(ValueError, match="in_channels >= 8"):
        CrissCrossAttention(4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_is_deterministic():
    block = make_block(dtype=torch.float32)
    x = torch.randn(2, 16, 9, 13, requires_grad=True)
    ref = block(x)
    ref_grad = torch.autograd.grad(ref.sum(), x)[0]
    block_gpu, x_gpu = block.cuda(), x.detach().cuda().requires_grad_()
    runs = []
    for _ in range(2):
        out = block_gpu(x_gpu)
        runs.append((out, torch.autograd.grad(out.sum(), x_gpu)[0]))
    torch.testing.assert_close(runs[0][0].cpu(), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(runs[0][1].cpu(), ref_grad, rtol=1e-4, atol=1e-4)
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    with torch.autocast("cuda", dtype=torch.float16):
        out, attn = block_gpu(x_gpu.half(), return_attention=True)
    assert attn.dtype == torch.float32
    torch.testing.assert_close(out.float().cpu(), ref, rtol=0.02, atol=0.02)


@pytest.mark.parametrize("recurrence", [1, 2])
def test_rcca_head_output_and_shared_block(recurrence):
    torch.manual_seed(0)
    head = RCCAHead(32, num_classes=3, channels=16, recurrence=recurrence)
    x = torch.randn(2, 32, 5, 7, requires_grad=True)
    out = head(x)
    assert set(out) == {"out"} and out["out"].shape == (2, 3, 5, 7)
    assert head.loss_weights == {}
    assert sum(isinstance(m, CrissCrossAttention) for m in head.modules()) == 1  # one block, reused
    out["out"].sum().backward()
    assert x.grad is not None and head.cca.value_conv.weight.grad is not None


def test_rcca_head_config_builds_the_head():
    config = OmegaConf.load(Path(__file__).parents[1] / "conf" / "head" / "ccnet.yaml")
    head = instantiate(config)(in_channels=32, num_classes=3)
    assert isinstance(head, RCCAHead) and head.recurrence == 2
    assert head.bottleneck[0].out_channels == 512 and head.cls[0].p == 0.1
