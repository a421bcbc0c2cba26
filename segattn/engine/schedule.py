"""Poly learning-rate schedule with optional linear warm-up, stepped every iteration."""
from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LinearLR, LRScheduler, PolynomialLR, SequentialLR


def poly_schedule(optimizer: Optimizer, max_steps: int, power: float = 0.9, warmup_steps: int = 0,
                  warmup_ratio: float = 0.1) -> LRScheduler:
    """``lr_t = lr * (1 - t / max_steps) ** power``, after ``warmup_steps`` rising linearly from ``warmup_ratio * lr``."""
    poly = PolynomialLR(optimizer, total_iters=max_steps - warmup_steps, power=power)
    if warmup_steps <= 0:
        return poly
    warmup = LinearLR(optimizer, start_factor=warmup_ratio, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warmup, poly], milestones=[warmup_steps])
