"""Poly learning-rate schedule with optional linear warm-up, stepped every iteration."""
from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LinearLR, LRScheduler, PolynomialLR, SequentialLR


def _poly_to_min(optimizer: Optimizer, total: int, power: float, min_lr: float) -> LambdaLR:
    """mmseg's PolyLR: ``lr_t = (lr - min_lr) * (1 - t / total) ** power + min_lr`` for each group's ``lr``."""
    def factor(base: float):
        return lambda t: ((1 - min(t, total) / total) ** power * (base - min_lr) + min_lr) / base

    return LambdaLR(optimizer, [factor(group["lr"]) for group in optimizer.param_groups])


def poly_schedule(optimizer: Optimizer, max_steps: int, power: float = 0.9, warmup_steps: int = 0,
                  warmup_ratio: float = 0.1, min_lr: float = 0.0) -> LRScheduler:
    """``lr_t = (lr - min_lr) * (1 - t / max_steps) ** power + min_lr`` (mmseg's PolyLR; ``min_lr=0``: plain
    poly), after ``warmup_steps`` rising linearly from ``warmup_ratio * lr``."""
    total = max_steps - warmup_steps
    poly = (_poly_to_min(optimizer, total, power, min_lr) if min_lr > 0
            else PolynomialLR(optimizer, total_iters=total, power=power))
    if warmup_steps <= 0:
        return poly
    warmup = LinearLR(optimizer, start_factor=warmup_ratio, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warmup, poly], milestones=[warmup_steps])
