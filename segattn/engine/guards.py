"""Stop a run whose training loss is not finite, on every DDP process at the same step."""
from __future__ import annotations

import torch
from torch import Tensor


class NonFiniteLossError(RuntimeError):
    """The training loss was NaN or infinite; the message names the step."""


def check_finite_loss(loss: Tensor, step: int, strategy=None) -> None:
    """Raise :class:`NonFiniteLossError` on every process when ``loss`` is not finite on any of them.

    The flag is summed over processes (``strategy.reduce``), so all of them stop before the backward
    pass of this step and none waits for the others in a gradient all-reduce; the weights and the
    checkpoints written so far keep the state of the last good step.
    """
    bad = (~torch.isfinite(loss.detach())).to(torch.float32).reshape(())
    processes = getattr(strategy, "world_size", 1) if strategy is not None else 1
    if processes > 1:
        bad = strategy.reduce(bad, reduce_op="sum")
    if bad.item() > 0:
        value = loss.item()
        what = "not finite" if torch.isfinite(torch.tensor(value)) else str(value)  # here, or on another process
        where = f" on {int(bad.item())} of {processes} processes" if processes > 1 else ""
        raise NonFiniteLossError(
            f"training loss is {what} at step {step}{where}: expected a finite loss; stopped before "
            f"updating the weights, checkpoints/last.ckpt keeps the last periodic checkpoint (lower optim.lr, "
            f"check the data, or use bf16-mixed instead of 16-mixed)"
        )
