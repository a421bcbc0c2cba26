"""One line naming the settings of a run that differ from its published recipe (``experiment=...``).

An override that contradicts the recipe is allowed (a study may change one setting on purpose); the run
says so, so that its numbers are not taken for the recipe's. The recipe's settings are the keys its files
(``conf/experiment/<name>.yaml`` and the ``/recipe/...`` files it includes) write, and every key of a
group they select (``override /loss: ce``: all of ``loss``; of ``data`` only the dataset class).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf

from segattn.configs import CONFIG_DIR

# Keys a recipe file writes that a run may change without training differently: where the files are.
NOT_RECIPE = ("backbone.pretrained", "data.root", "data.batch_size", "data.num_workers", "data.val_batch_size")
GROUP_KEYS = {"data": ("data._target_", "data.dataset._target_")}  # a selected group whose other keys are local


def recipe_files(experiment: str, config_dir: Path = CONFIG_DIR) -> tuple[list[dict], list[str]]:
    """The contents (``defaults`` removed) of the experiment's file and the recipe files it includes, and the
    config groups they select (``override /head: ccnet`` -> ``head``)."""
    contents, groups, pending = [], [], [Path(config_dir) / "experiment" / f"{experiment}.yaml"]
    while pending:
        data = OmegaConf.to_container(OmegaConf.load(pending.pop()), resolve=False)
        for entry in data.pop("defaults", None) or []:
            if isinstance(entry, str) and entry.startswith("/") and entry != "_self_":
                pending.append(Path(config_dir) / f"{entry.lstrip('/')}.yaml")
            elif isinstance(entry, dict):
                groups += [key.removeprefix("override ").lstrip("/") for key in entry]
        contents.append(data)
    return contents, groups


def recipe_keys(experiment: str, reference: DictConfig, config_dir: Path = CONFIG_DIR) -> list[str]:
    """Dotted keys the recipe sets, in ``reference`` (the config ``experiment=<name>`` alone composes to)."""
    contents, groups = recipe_files(experiment, config_dir)
    keys = {key for data in contents for key in _leaves(data)}
    for group in groups:
        keys |= set(GROUP_KEYS.get(group) or (f"{group}.{key}" for key in _leaves(reference.get(group) or {})))
    return sorted(key for key in keys if not key.startswith(NOT_RECIPE))


def recipe_differences(cfg: DictConfig, reference: DictConfig, keys: list[str]) -> list[str]:
    """``key=value (recipe: value)`` for each of ``keys`` whose value in ``cfg`` is not the reference's."""
    found = []
    for key in keys:
        ours, theirs = _value(cfg, key), _value(reference, key)
        if ours != theirs:
            found.append(f"{key}={_show(ours)} (recipe: {_show(theirs)})")
    return found


def recipe_notice(cfg: DictConfig, experiment: Optional[str]) -> Optional[str]:
    """The line to print when ``cfg`` differs from ``experiment``'s recipe, else None. Composes the recipe with
    Hydra's compose API: call it inside ``@hydra.main`` (``train.py``) or an ``initialize_config_dir`` block."""
    if not experiment:
        return None
    from hydra import compose

    reference = compose("train", overrides=[f"experiment={experiment}"])
    differences = recipe_differences(cfg, reference, recipe_keys(experiment, reference))
    if not differences:
        return None
    return f"note: this run differs from the published recipe experiment={experiment}: " + ", ".join(differences)


def _leaves(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, (dict, DictConfig)) and len(data):
        return [leaf for key, value in data.items() for leaf in _leaves(value, f"{prefix}{key}.")]
    return [prefix[:-1]] if prefix else []


def _value(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default="<absent>", throw_on_missing=False)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


def _show(value: Any) -> str:
    return str(value).replace(" ", "") if isinstance(value, list) else str(value)
