"""Attention weights taken from a model's real forward pass with forward hooks.

Every attention block of ``segattn.models.attention`` that has a spatial or channel map accepts
``forward(x, return_attention=True) -> (out, weights)``. :func:`capture_attention` hooks each such
block of a model: a pre-hook asks the block for its weights, a forward hook keeps them and hands
only ``out`` on, so the model runs exactly its own code (a block called R times gives R records).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Iterator, Optional

from torch import Tensor, nn

from segattn.models.attention import (
    ChannelAttention, CrissCrossAttention, DisentangledNonLocal2d, NonLocal2d, PositionAttention,
)

KINDS = {CrissCrossAttention: "criss_cross", PositionAttention: "position", ChannelAttention: "channel",
         DisentangledNonLocal2d: "disentangled_non_local", NonLocal2d: "non_local"}  # subclasses before their base


@dataclass
class AttentionRecord:
    """One call of an attention block, on the CPU in float32.

    ``weights``: criss-cross ``B x h x w x (h + w)`` (``[..., :h]`` over the column, ``[..., h:]`` over
    the row), position ``B x hw x hw``, non-local ``B x hw x N``, disentangled non-local ``B x hw x hw``
    (its whitened pairwise term) (``key_size`` = the N key positions as
    a grid), channel ``B x C x C``. ``size``: ``(h, w)`` of the block's input; ``features``: the
    ``B x C x h x w`` input (channel attention only, to find the strongest channel at a point).
    """

    kind: str
    weights: Tensor
    size: tuple[int, int]
    key_size: tuple[int, int]
    features: Optional[Tensor] = None


def _ask_for_weights(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return args, {**kwargs, "return_attention": True}


def kind_of(module: nn.Module) -> Optional[str]:
    """``"criss_cross"``, ``"position"``, ``"channel"``, ``"disentangled_non_local"``, ``"non_local"``, or None
    for other modules."""
    return next((kind for cls, kind in KINDS.items() if isinstance(module, cls)), None)


def _keep_weights(records: list, module: nn.Module, args: tuple, kwargs: dict, output) -> Tensor:
    out, weights = output
    x = args[0] if args else kwargs["x"]
    kind = kind_of(module)
    size = tuple(x.shape[-2:])
    key_size = tuple(module.pool(x[:1, :1]).shape[-2:]) if isinstance(module, NonLocal2d) else size
    features = x.detach().float().cpu() if kind == "channel" else None
    records.append(AttentionRecord(kind, weights.detach().float().cpu(), size, key_size, features))
    return out


@contextmanager
def capture_attention(model: nn.Module) -> Iterator[dict[str, list[AttentionRecord]]]:
    """Inside the ``with``, every forward of ``model`` appends the weights of each attention block to
    ``records[module name]`` (call order); the hooks are removed on exit. Raises ValueError if
    ``model`` has no such block."""
    blocks = [(name, m) for name, m in model.named_modules() if kind_of(m) is not None]
    if not blocks:
        kinds = ", ".join(cls.__name__ for cls in KINDS)
        raise ValueError(f"{type(model).__name__} has no attention block with a map to draw (expected one of {kinds})")
    records: dict[str, list[AttentionRecord]] = {name: [] for name, _ in blocks}
    handles = []
    for name, module in blocks:
        handles.append(module.register_forward_pre_hook(_ask_for_weights, with_kwargs=True))
        handles.append(module.register_forward_hook(partial(_keep_weights, records[name]), with_kwargs=True))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()
