"""Which release layout a state dict is in; the plan of each format."""
from __future__ import annotations

from torch import Tensor

from segattn.convert import ccnet, danet, mmseg
from segattn.convert.errors import ConversionError
from segattn.convert.plan import Plan

READERS = {"mmseg": mmseg, "ccnet": ccnet, "danet": danet}
FORMATS = ("auto", *READERS)


def detect_format(state: dict[str, Tensor], source: str) -> str:
    """``mmseg`` | ``ccnet`` | ``danet`` from the keys; ConversionError naming the first keys otherwise."""
    for name, reader in READERS.items():
        if reader.matches(state):
            return name
    raise ConversionError(
        f"{source}: unknown checkpoint layout (first keys: {', '.join(list(state)[:5])}); expected an mmseg zoo "
        "file (backbone.*, decode_head.*), an official CCNet release (conv1, layer1..4, head.conva, dsn) or an "
        "official DANet release (pretrained.*, head.conv5a)"
    )


def plan_for(state: dict[str, Tensor], source: str, file_name: str, fmt: str = "auto") -> Plan:
    """The plan of ``fmt`` (detected when ``auto``); fails naming source keys that no rule maps."""
    if fmt not in FORMATS:
        raise ConversionError(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
    name = detect_format(state, source) if fmt == "auto" else fmt
    try:
        result = READERS[name].plan(state, file_name) if READERS[name].matches(state) else None
    except ConversionError as err:  # a reader's check of a tensor its layout needs
        raise ConversionError(f"{source} looks like the {name} layout, but {err}") from None
    if result is None:
        raise ConversionError(f"{source} is not in the {name} layout (first keys: {', '.join(list(state)[:5])})")
    result.file_name = file_name
    if result.unmatched:
        raise ConversionError(
            f"{source}: {len(result.unmatched)} tensors have no place in a segattn model of the {name} layout "
            f"(first: {', '.join(result.unmatched[:5])})"
        )
    return result
