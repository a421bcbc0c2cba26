"""Shared check: a block equals its slow reference in forward output and in every gradient."""
import torch


def assert_matches_reference(module, reference, x, rtol=1e-9, atol=1e-10):
    """``module(x)`` and ``reference(x)`` agree, and so do their gradients wrt ``x`` and every parameter."""
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out, ref = module(x1), reference(x2)
    torch.testing.assert_close(out, ref, rtol=rtol, atol=atol)
    weight = torch.randn_like(out)
    params = list(module.parameters())
    grads = torch.autograd.grad((out * weight).sum(), [x1, *params])
    ref_grads = torch.autograd.grad((ref * weight).sum(), [x2, *params])
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=rtol * 10, atol=atol)
