"""How the CLIs end on a user's error: one line ``<prog>: error: <message>``, no traceback."""
from __future__ import annotations

import functools
from typing import Callable


def one_line_errors(prog: str) -> Callable:
    """Decorate a CLI's ``main(cfg)``: a ValueError (every user error of the library is one) exits with its message."""
    def decorate(main: Callable) -> Callable:
        @functools.wraps(main)
        def wrapped(cfg) -> None:
            try:
                main(cfg)
            except ValueError as err:
                raise SystemExit(f"{prog}: error: {err}") from None
        return wrapped
    return decorate
