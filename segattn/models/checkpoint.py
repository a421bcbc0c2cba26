"""Read a segattn checkpoint (trained or converted) and rebuild its Segmentor with the weights."""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from segattn.models.build import build_segmentor
from segattn.models.segmentor import Segmentor


class CheckpointError(ValueError):
    """A file that is not a usable segattn checkpoint (the message says what was expected and found)."""


RUN_FOLDER_CHECKPOINTS = ("best.ckpt", "last.ckpt")  # what a run folder stands for, in this order


def resolve_checkpoint(ckpt: str | Path) -> Path:
    """A checkpoint file, or a training run folder -> its ``checkpoints/best.ckpt`` (else ``checkpoints/last.ckpt``)."""
    path = Path(ckpt).expanduser()
    if path.is_dir():
        found = next((c for c in (path / "checkpoints" / n for n in RUN_FOLDER_CHECKPOINTS) if c.is_file()), None)
        if found is None:
            raise CheckpointError(f"ckpt={ckpt}: run folder without checkpoints/best.ckpt or checkpoints/last.ckpt")
        return found
    if not path.is_file():
        raise CheckpointError(f"ckpt={ckpt}: no such file or folder (expected a .ckpt file or a training run folder)")
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict; it must hold ``state_dict``, ``config`` and ``class_names`` of a segattn run."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except Exception as err:  # pickle/zip errors of all kinds: the file is not a checkpoint
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None
    missing = [key for key in ("state_dict", "config", "class_names") if not isinstance(ckpt, dict) or key not in ckpt]
    if missing:
        found = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path} is not a segattn training checkpoint: missing {missing}, found {found}")
    return ckpt


def model_weights(ckpt: dict) -> dict[str, torch.Tensor]:
    """The Segmentor's tensors of a checkpoint (Lightning's ``model.`` prefix removed).

    Runs of earlier versions with ``deep_stem=true`` nested the stem one level deeper
    (``backbone.stem.0.<i>``); their keys are moved to today's flat ``backbone.stem.<i>``.
    """
    state = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    nested = "backbone.stem.0."
    if any(k.startswith(nested + "0.") for k in state):
        state = {("backbone.stem." + k[len(nested):] if k.startswith(nested) else k): v for k, v in state.items()}
    return state


def mismatches(own: dict, state: dict) -> list[str]:
    """``"N missing (e.g. ...)"``-style descriptions of how ``state`` differs from ``own``; empty if it fits."""
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in sorted(own.keys() & state.keys()) if state[k].shape != own[k].shape]
    return [f"{len(items)} {kind} (e.g. {', '.join(items[:3])})"
            for kind, items in (("missing", missing), ("unexpected", unexpected),
                                ("with another shape, checkpoint vs model", shapes)) if items]


def build_model(ckpt: dict, path: str | Path) -> Segmentor:
    """The Segmentor of the checkpoint's config with its weights (eval mode, on CPU)."""
    config = copy.deepcopy(ckpt["config"])
    config["backbone"]["pretrained"] = None  # the checkpoint holds the weights; no download
    model = build_segmentor(config, len(ckpt["class_names"]))
    state = model_weights(ckpt)
    problems = mismatches(model.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"the weights in {path} do not fit the model built from its config "
            f"(head {config['head'].get('_target_')}, backbone depth {config['backbone'].get('depth')}, "
            f"{len(ckpt['class_names'])} classes): parameters " + "; ".join(problems)
        )
    model.load_state_dict(state)
    return model.eval()
