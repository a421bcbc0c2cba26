"""Rename a state dict by prefix rules and load it strictly into a model (every tensor lands, shapes agree)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from torch import Tensor, nn

from segattn.convert.errors import ConversionError

Rules = Sequence[tuple[str, str]]


def rename(state: Mapping[str, Tensor], rules: Rules) -> tuple[dict[str, Tensor], list[str], dict[str, str]]:
    """Apply the first rule ``(old_prefix, new_prefix)`` matching each key.

    Returns the renamed tensors, the source keys no rule matched, and each new key's source key.

    A ``gamma.scale`` key (mmcv's ``Scale``, a 0-d tensor) maps to shape ``(1,)``; older mmseg files name the
    same tensor ``gamma`` with shape ``(1,)`` already.
    """
    renamed, unmatched, origin = {}, [], {}
    for key, value in state.items():
        for old, new in rules:
            if key == old or (old.endswith(".") and key.startswith(old)):
                target = new + key[len(old):]
                if key.endswith("gamma.scale") and value.dim() == 0:
                    value = value.reshape(1)
                renamed[target], origin[target] = value, key
                break
        else:
            unmatched.append(key)
    return renamed, unmatched, origin


def load_strict(model: nn.Module, state: Mapping[str, Tensor], source_name: str,
                origin: Optional[Mapping[str, str]] = None) -> None:
    """Copy ``state`` into ``model``; fail naming missing keys, leftover keys or shape mismatches.

    BatchNorm ``num_batches_tracked`` counters absent from the source keep the model's value.
    """
    origin = origin or {}
    own = model.state_dict()
    leftover = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    shapes = [f"{origin.get(k, k)} -> {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if leftover or missing or shapes:
        parts = []
        if shapes:
            parts.append(f"shape mismatch {'; '.join(shapes[:3])}")
        if leftover:
            named = [f"{origin.get(k, k)} -> {k}" for k in leftover[:4]]
            parts.append(f"{len(leftover)} source tensors with no place in the model (e.g. {', '.join(named)})")
        if missing:
            parts.append(f"{len(missing)} model tensors not in the file (e.g. {', '.join(missing[:4])})")
        raise ConversionError(f"{source_name} does not fit the inferred model: " + "; ".join(parts))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
