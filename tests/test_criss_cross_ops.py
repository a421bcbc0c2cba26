"""The standard-op criss-cross path (export, tracing) against the training path and the loop reference."""
import pytest
import torch
from test_criss_cross import make_block, reference

from segattn.models.attention.criss_cross_ops import criss_cross_ops


def ops(block, x):
    return criss_cross_ops(x, block.query_conv(x), block.key_conv(x), block.value_conv(x), block.gamma)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("shape", [(2, 16, 5, 7), (1, 16, 9, 3)])
def test_equals_the_training_path_values_and_weights(dtype, tol, shape):
    block = make_block(dtype=dtype)
    x = torch.randn(shape, dtype=dtype)
    out, attn = ops(block, x)
    expected_out, expected_attn = block(x, return_attention=True)
    assert (out - x).abs().max() > 0.1  # the attention term is not negligible
    torch.testing.assert_close(out - x, expected_out - x, rtol=tol, atol=tol)
    torch.testing.assert_close(attn, expected_attn, rtol=tol, atol=tol)


def test_matches_the_loop_reference_and_zeroes_the_duplicated_self_entry():
    block = make_block()
    x = torch.randn(1, 16, 4, 6, dtype=torch.float64)
    out, attn = ops(block, x)
    ref_out, ref_attn = reference(block, x)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(attn, ref_attn, rtol=1e-10, atol=1e-10)
    assert attn[0, 2, 3, 2] == 0 and attn[0, 2, 3, 4 + 3] > 0  # column self entry 0, row self entry kept


def test_tracing_dispatches_to_the_standard_ops_and_keeps_sizes_dynamic():
    block = make_block(dtype=torch.float32).eval()
    traced = torch.jit.trace(block, torch.randn(1, 16, 6, 5), check_trace=False)
    x = torch.randn(2, 16, 4, 9)
    torch.testing.assert_close(traced(x), block(x), rtol=1e-5, atol=1e-5)
    assert "prim::PythonOp" not in str(traced.inlined_graph)  # no custom autograd function recorded
