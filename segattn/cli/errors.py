"""How the CLIs end on a user's error: one line ``<prog>: error: <message>``, no traceback."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue


def program_name(default: str) -> str:
    """The name the user ran (``evaluate.py`` or ``segattn-eval``); ``default`` when Python was driven otherwise."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name and name not in ("-c", "pytest", "__main__.py") else default


def required_keys(cfg: DictConfig) -> list[str]:
    """The top-level keys still ``???`` (the ones the user must pass)."""
    return [key for key in cfg if OmegaConf.is_missing(cfg, key)]


def one_line_errors(prog: str) -> Callable:
    """Decorate a CLI's ``main(cfg)``: a ValueError (every user error of the library is one) exits with its
    message; a missing required argument names every one still missing."""
    def decorate(main: Callable) -> Callable:
        @functools.wraps(main)
        def wrapped(cfg) -> None:
            name = program_name(prog)
            missing = required_keys(cfg)
            if missing:
                usage = " ".join(f"{key}=<value>" for key in missing)
                raise SystemExit(f"{name}: error: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                                 f"required: pass {usage} (see --help)")
            try:
                main(cfg)
            except MissingMandatoryValue as err:
                raise SystemExit(f"{name}: error: {err.full_key} is required: pass {err.full_key}=<value>") from None
            except ValueError as err:
                raise SystemExit(f"{name}: error: {err}") from None
        return wrapped
    return decorate
