"""Loggers and callbacks of a run from their config groups (``conf/logger/``, ``conf/callbacks/``)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from hydra.errors import InstantiationException
from hydra.utils import instantiate

EXTRAS = {"wandb": "wandb", "mlflow": "mlflow"}  # Python package -> segattn extra that installs it


class ComponentError(ValueError):
    """A logger or callback of the config could not be built; the message names it and says why."""


def instantiate_group(group: Optional[Mapping[str, Any]], group_name: str) -> list:
    """``{name: {_target_: ..., ...}}`` -> the built objects, in config order (entries set to null are
    skipped, so ``callbacks.validation_images=null`` removes one). A missing optional package raises
    :class:`ComponentError` with the ``pip install`` that brings it."""
    built = []
    for name, entry in (group or {}).items():
        if entry is None:
            continue
        if "_target_" not in entry:
            raise ComponentError(f"{group_name}.{name}: expected a config with _target_, found keys {sorted(entry)}")
        try:
            built.append(instantiate(entry, _convert_="all"))
        except InstantiationException as err:
            missing = _missing_module(err)
            if missing is None:
                raise ComponentError(f"{group_name}.{name}: {err}") from err
            extra = next((extra for package, extra in EXTRAS.items() if package in missing), None)
            hint = f"pip install 'segattn[{extra}]'" if extra else "pip install it"
            raise ComponentError(f"{group_name}.{name}: expected an installed package, found none ({missing}); "
                                 f"{hint}") from None
    return built


def _missing_module(err: BaseException) -> Optional[str]:
    """The module whose import failed somewhere in ``err``'s causes (its name, else the message), or None."""
    while err is not None:
        if isinstance(err, ModuleNotFoundError):
            return err.name or str(err)
        err = err.__cause__ or err.__context__
    return None
