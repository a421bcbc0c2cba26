"""All attention diagnostics of a model on one batch: ``{"attention/<block>/<statistic>": value}``."""
from __future__ import annotations

from contextlib import ExitStack

import torch
from torch import Tensor, nn

from segattn.diagnostics.gating import capture_mean_gates, gating_blocks
from segattn.diagnostics.reach import block_reach
from segattn.visualization.capture import capture_attention, kind_of


def has_attention_maps(model: nn.Module) -> bool:
    """Whether ``model`` has a block :func:`~segattn.visualization.capture.capture_attention` can read."""
    return any(kind_of(m) is not None for m in model.modules())


def measure_on_batch(model: nn.Module, images: Tensor) -> dict[str, float]:
    """Run ``model`` on ``images`` (``B x 3 x H x W``, eval mode, no gradients, float32; the mode is restored)
    and return per attention block ``entropy`` (nats), ``distance_px`` and, for criss-cross,
    ``beyond_cross`` (:func:`~segattn.diagnostics.reach.block_reach`), and per SE/CBAM block ``mean_gate``."""
    was_training = model.training
    model.eval()
    try:
        with ExitStack() as stack:
            maps = stack.enter_context(capture_attention(model)) if has_attention_maps(model) else {}
            gates = stack.enter_context(capture_mean_gates(model)) if gating_blocks(model) else {}
            with torch.no_grad():
                model(images.float())
    finally:
        model.train(was_training)
    size = tuple(images.shape[-2:])
    stats = {f"attention/{name}/{key}": value
             for name, records in maps.items() if records for key, value in block_reach(records, size).items()}
    stats.update({f"attention/{name}/mean_gate": sum(values) / len(values) for name, values in gates.items() if values})
    return stats
