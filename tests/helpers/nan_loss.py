"""A criterion that turns NaN after a number of calls, to drive the non-finite loss guard end to end."""
from typing import Optional

import torch
import torch.distributed as dist

from segattn.losses import CrossEntropy


class NaNAfter(CrossEntropy):
    """Cross-entropy for the first ``calls`` calls, NaN from then on (on process ``rank`` only, if given)."""

    def __init__(self, calls: int, rank: Optional[int] = None):
        super().__init__()
        self.calls, self.rank, self.done = int(calls), rank, 0

    def forward(self, logits, target):
        self.done += 1
        loss = super().forward(logits, target)
        here = self.rank is None or (dist.is_initialized() and dist.get_rank() == self.rank)
        return loss * torch.nan if here and self.done > self.calls else loss
