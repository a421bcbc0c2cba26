"""Losses, loggers and callbacks of a run from their configs (``conf/loss/``, ``conf/logger/``,
``conf/callbacks/``), with one clear error when one cannot be built."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from hydra.errors import InstantiationException
from hydra.utils import instantiate

EXTRAS = {"wandb": "wandb", "mlflow": "mlflow"}  # Python package -> segattn extra that installs it


class ComponentError(ValueError):
    """A loss, logger or callback of the config could not be built; the message names it and says why."""


def instantiate_one(entry: Mapping[str, Any], key: str) -> Any:
    """``instantiate(entry)``; a missing optional package, a bad value (ValueError) or a missing file
    raises :class:`ComponentError` naming ``key`` (e.g. ``logger.wandb``) and the cause."""
    if "_target_" not in entry:
        raise ComponentError(f"{key}: expected a config with _target_, found keys {sorted(entry)}")
    try:
        return instantiate(entry, _convert_="all")
    except InstantiationException as err:
        missing = _missing_module(err)
        if missing is not None:
            extra = next((extra for package, extra in EXTRAS.items() if package in missing), None)
            hint = f"pip install 'segattn[{extra}]'" if extra else "pip install it"
            raise ComponentError(f"{key}: expected an installed package, found none ({missing}); {hint}") from None
        cause = err.__cause__
        if isinstance(cause, (ValueError, FileNotFoundError)):
            raise ComponentError(f"{key}: {cause}") from None
        raise


def instantiate_group(group: Optional[Mapping[str, Any]], group_name: str) -> list:
    """``{name: {_target_: ..., ...}}`` -> the built objects, in config order (entries set to null are
    skipped, so ``callbacks.validation_images=null`` removes one)."""
    return [instantiate_one(entry, f"{group_name}.{name}") for name, entry in (group or {}).items() if entry is not None]


def _missing_module(err: Optional[BaseException]) -> Optional[str]:
    """The module whose import failed somewhere in ``err``'s causes (its name, else the message), or None."""
    while err is not None:
        if isinstance(err, ModuleNotFoundError):
            return err.name or str(err)
        err = err.__cause__ or err.__context__
    return None
