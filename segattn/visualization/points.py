"""``key=value`` arguments of the drawing scripts and the ``[y, x]`` points they mark on an image."""
from __future__ import annotations

from typing import Mapping, Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException


def parse_key_values(argv: Sequence[str], defaults: Mapping[str, object], required: Sequence[str]) -> dict:
    """``key=value`` arguments (values in YAML: ``points=[[10,20],[30,40]]``) over ``defaults``; ValueError
    for an unknown key, an unparsable value or a missing ``required`` key."""
    wrong = [arg for arg in argv if "=" not in arg or arg.split("=", 1)[0] not in defaults]
    if wrong:
        raise ValueError(f"unknown argument(s) {wrong}: expected key=value with keys {sorted(defaults)}")
    try:
        args = {**defaults, **OmegaConf.to_container(OmegaConf.from_dotlist(list(argv)))}
    except OmegaConfBaseException as err:
        raise ValueError(f"cannot parse the arguments {list(argv)}: {err}") from None
    missing = [key for key in required if args[key] is None]
    if missing:
        raise ValueError(f"missing {', '.join(f'{key}=...' for key in missing)} (see --help)")
    return args


def check_points(points, size: tuple[int, int]) -> list[tuple[int, int]]:
    """``None`` (the centre) or a list of ``[y, x]`` integer pixel pairs inside the ``size`` image."""
    if points is None:
        return [(size[0] // 2, size[1] // 2)]
    pairs = points if isinstance(points, list) else None
    if not pairs or not all(isinstance(p, list) and len(p) == 2 and all(type(v) is int for v in p) for p in pairs):
        raise ValueError(f"points must be a list of [y, x] integer pairs, e.g. points=[[64,128],[10,20]]; got {points}")
    outside = [p for p in pairs if not (0 <= p[0] < size[0] and 0 <= p[1] < size[1])]
    if outside:
        raise ValueError(f"points {outside} lie outside the image ({size[0]} rows x {size[1]} columns, [y, x] from 0)")
    return [tuple(p) for p in pairs]
