"""Rebuild the Segmentor of a segattn checkpoint dict (trained or converted) with its weights."""
from __future__ import annotations

import copy
from pathlib import Path


from segattn.checkpoints import CheckpointError, check_stored_config, model_weights
from segattn.models.build import build_segmentor
from segattn.models.segmentor import Segmentor


def mismatches(own: dict, state: dict) -> list[str]:
    """``"N missing (e.g. ...)"``-style descriptions of how ``state`` differs from ``own``; empty if it fits."""
    missing, unexpected = sorted(own.keys() - state.keys()), sorted(state.keys() - own.keys())
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in sorted(own.keys() & state.keys()) if state[k].shape != own[k].shape]
    return [f"{len(items)} {kind} (e.g. {', '.join(items[:3])})"
            for kind, items in (("missing", missing), ("unexpected", unexpected),
                                ("with another shape, checkpoint vs model", shapes)) if items]


def build_model(ckpt: dict, path: str | Path) -> Segmentor:
    """The Segmentor of the checkpoint's config with its weights (eval mode, on CPU).

    The config comes from a file: its ``_target_`` entries may name segattn's classes only.
    """
    check_stored_config(ckpt["config"], str(path))
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
