"""Mean activation of the multiplicative gates of SE and CBAM blocks, taken with forward hooks."""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Iterator

from torch import Tensor, nn

from segattn.models.attention import CBAM, SqueezeExcitation


def gating_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """``{module name: block}`` for every SE and CBAM block of ``model``."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (SqueezeExcitation, CBAM))}


def _keep_mean_gate(means: list, module: nn.Module, args: tuple, output: Tensor) -> None:
    """``out = gate * x`` elementwise for SE (channel gate) and CBAM (channel x spatial gate): the mean
    of ``out / x`` over the elements where ``x`` is not ~0 is the block's mean gate, in (0, 1)."""
    x, out = args[0].detach().float(), output.detach().float()
    nonzero = x.abs() > 1e-6
    if nonzero.any():
        means.append(float((out[nonzero] / x[nonzero]).mean()))


@contextmanager
def capture_mean_gates(model: nn.Module) -> Iterator[dict[str, list[float]]]:
    """Inside the ``with``, every forward appends each SE/CBAM block's mean gate to ``means[name]``."""
    means: dict[str, list[float]] = {name: [] for name in gating_blocks(model)}
    handles = [block.register_forward_hook(partial(_keep_mean_gate, means[name]))
               for name, block in gating_blocks(model).items()]
    try:
        yield means
    finally:
        for handle in handles:
            handle.remove()
