"""``model.init_from``: start training from the weights (only) of a segattn checkpoint or a converter-readable file."""
from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from segattn.models.normalization import InputNormalization
from segattn.models.segmentor import Segmentor


class InitFromError(ValueError):
    """The file cannot initialise this model (not readable, another architecture or input normalisation)."""


def _source(path: Path) -> tuple[dict[str, Tensor], dict, str]:
    """Segmentor-keyed tensors of ``path``, the ``model`` settings they were trained with (``normalization``,
    ``align_corners``) and a word on where they come from."""
    from segattn.checkpoints import (CheckpointError, checked_segattn, is_segattn_checkpoint, model_weights, read_file,
                                     state_dict_of)
    from segattn.convert.formats import plan_for
    from segattn.convert.release_settings import release_settings

    try:
        data = read_file(path)
        if is_segattn_checkpoint(data):
            model = checked_segattn(data, path)["config"].get("model") or {}
            return model_weights(data), model, "segattn checkpoint"
        plan = plan_for(state_dict_of(data, path), str(path), path.name)
        meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
        settings, _ = release_settings(plan.format, meta, path.name)
    except CheckpointError as err:
        raise InitFromError(f"model.init_from={path}: {err}") from None
    return plan.state, {**plan.model, "align_corners": settings["align_corners"]}, f"{plan.format} file"


def classifier_keys(model: nn.Module, num_classes: int) -> list[str]:
    """Parameters of the 1x1 convs that output the ``num_classes`` logits (main, branch and aux classifiers)."""
    return [f"{name}.{p}" for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.out_channels == num_classes
            for p, _ in m.named_parameters(recurse=False)]


def _normalization(settings: dict) -> tuple:
    """What a ``model.normalization`` setting does to a pipeline image: channel order, per-channel scale and shift."""
    norm = InputNormalization(**(settings or {}))
    return tuple(norm.order), tuple(round(v, 6) for v in [*norm.scale.flatten().tolist(), *norm.shift.flatten().tolist()])


def init_from(model: Segmentor, path: str | Path, allow_other_normalization: bool = False) -> str:
    """Copy the weights of ``path`` into ``model`` (not the optimizer or the step); returns a report.

    When the file predicts another number of classes, the classifiers keep their fresh init. Any
    other difference (missing, extra or reshaped tensors) is another architecture: InitFromError. Weights
    trained on another input normalisation are refused unless ``allow_other_normalization``; another
    ``align_corners`` is reported.
    """
    from segattn.models.checkpoint import mismatches

    path = Path(path).expanduser()
    if not path.is_file():
        raise InitFromError(f"model.init_from={path}: no such file (expected a segattn .ckpt or a file segattn-convert reads)")
    state, trained, kind = _source(path)
    if _normalization(trained.get("normalization")) != _normalization(model.normalization) and not allow_other_normalization:
        raise InitFromError(
            f"model.init_from={path} was trained on inputs normalised as {trained.get('normalization') or 'ImageNet RGB'}, "
            f"this run's model.normalization is {model.normalization or 'ImageNet RGB'}: set model.normalization to the "
            f"file's, or pass model.init_from_other_normalization=true to fine-tune on the new one")
    own = model.state_dict()
    classifiers = classifier_keys(model, model.num_classes)
    source_classes = {tuple(state[k].shape)[0] for k in classifiers if k in state}
    notes = []
    if source_classes and source_classes != {model.num_classes}:
        state = {k: v for k, v in state.items() if k not in classifiers}
        notes.append(f"{next(iter(source_classes))} classes in the file, {model.num_classes} here: classifiers "
                     f"re-initialised ({', '.join(sorted({k.rsplit('.', 1)[0] for k in classifiers}))})")
    if trained.get("align_corners") is not None and bool(trained["align_corners"]) != model.align_corners:
        notes.append(f"the file was trained with align_corners={trained['align_corners']}, this run uses "
                     f"model.align_corners={model.align_corners}")
    expected = {k: v for k, v in own.items()
                if k in state or not (k in classifiers or k.endswith("num_batches_tracked"))}
    problems = mismatches(expected, state)
    if problems:
        raise InitFromError(f"model.init_from={path} is another architecture than this run's model: "
                            "parameters " + "; ".join(problems))
    model.load_state_dict(state, strict=False)
    return f"init_from: {len(state)} tensors from {path.name} ({kind})" + "".join(f"; {n}" for n in notes)
