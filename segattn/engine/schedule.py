"""Poly learning-rate schedule with optional linear warm-up, stepped every iteration."""
from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

# Where the poly factor reaches 0 (the LR its floor ``min_lr``): ``max_steps`` (one step after the last,
# ``(1 - t / T) ** power``, the official CCNet's lr_poly) or ``last_step`` (step ``T - 1``, mmengine's PolyLR,
# whose ``total_iters`` is ``end - begin - 1``).
POLY_ENDS = ("max_steps", "last_step")


def poly_factor(step: int, max_steps: int, power: float = 0.9, warmup_steps: int = 0,
                warmup_ratio: float = 0.1, end: str = "max_steps") -> float:
    """The LR multiplier at ``step``: linear warm-up from ``warmup_ratio``, then ``(1 - t / T) ** power`` with
    ``T = max_steps - warmup_steps`` (``end="max_steps"``) or one less (``end="last_step"``)."""
    if end not in POLY_ENDS:
        raise ValueError(f"optim.poly_end={end!r}: expected one of {list(POLY_ENDS)}")
    if step < warmup_steps:
        return warmup_ratio + (1.0 - warmup_ratio) * step / warmup_steps
    total = max(max_steps - warmup_steps - (end == "last_step"), 1)
    return (1.0 - min(step - warmup_steps, total) / total) ** power


def poly_schedule(optimizer: Optimizer, max_steps: int, power: float = 0.9, warmup_steps: int = 0,
                  warmup_ratio: float = 0.1, min_lr: float = 0.0, end: str = "max_steps") -> LambdaLR:
    """``lr_t = (lr - min_lr) * f_t + min_lr`` with ``f_t`` of :func:`poly_factor` (``end="last_step"``: mmengine's
    PolyLR with ``eta_min=min_lr``; ``min_lr=0``: plain poly), for each parameter group's ``lr``.

    The factor is computed from the step alone and its settings are not saved in the scheduler's state,
    so a run resumed with a larger ``max_steps`` follows the longer schedule from the saved step on.
    """
    poly_factor(0, max_steps, power, warmup_steps, warmup_ratio, end)  # a bad ``end`` fails here, not at step 1

    def group_factor(base: float):  # closures: LambdaLR saves the state of callable objects, not of functions
        def factor(step: int) -> float:
            f = poly_factor(step, max_steps, power, warmup_steps, warmup_ratio, end)
            return ((base - min_lr) * f + min_lr) / base if min_lr > 0 else f
        return factor

    return LambdaLR(optimizer, [group_factor(group["lr"]) for group in optimizer.param_groups])
