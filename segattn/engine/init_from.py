"""``model.init_from``: start training from the weights (only) of a segattn checkpoint or a converter-readable file."""
from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from segattn.models.segmentor import Segmentor


class InitFromError(ValueError):
    """The file cannot initialise this model (not readable, or another architecture)."""


def _source_weights(path: Path) -> tuple[dict[str, Tensor], str]:
    """Segmentor-keyed tensors of ``path`` and a word on where they come from."""
    from segattn.convert import ConversionError
    from segattn.convert.formats import plan_for
    from segattn.convert.source import is_segattn_checkpoint, read_checkpoint, state_dict_of
    from segattn.models.checkpoint import model_weights

    try:
        data = read_checkpoint(path)
        if is_segattn_checkpoint(data):
            return model_weights(data), "segattn checkpoint"
        plan = plan_for(state_dict_of(data, path), str(path), path.name)
    except ConversionError as err:
        raise InitFromError(f"model.init_from={path}: {err}") from None
    return plan.state, f"{plan.format} file"


def classifier_keys(model: nn.Module, num_classes: int) -> list[str]:
    """Parameters of the 1x1 convs that output the ``num_classes`` logits (main, branch and aux classifiers)."""
    return [f"{name}.{p}" for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.out_channels == num_classes
            for p, _ in m.named_parameters(recurse=False)]


def init_from(model: Segmentor, path: str | Path) -> str:
    """Copy the weights of ``path`` into ``model`` (not the optimizer or the step); returns a one-line report.

    When the file predicts another number of classes, the classifiers keep their fresh init. Any
    other difference (missing, extra or reshaped tensors) is another architecture: InitFromError.
    """
    from segattn.models.checkpoint import mismatches

    path = Path(path).expanduser()
    if not path.is_file():
        raise InitFromError(f"model.init_from={path}: no such file (expected a segattn .ckpt or a file segattn-convert reads)")
    state, kind = _source_weights(path)
    own = model.state_dict()
    classifiers = classifier_keys(model, model.num_classes)
    source_classes = {tuple(state[k].shape)[0] for k in classifiers if k in state}
    note = ""
    if source_classes and source_classes != {model.num_classes}:
        state = {k: v for k, v in state.items() if k not in classifiers}
        note = (f"; {next(iter(source_classes))} classes in the file, {model.num_classes} here: classifiers "
                f"re-initialised ({', '.join(sorted({k.rsplit('.', 1)[0] for k in classifiers}))})")
    expected = {k: v for k, v in own.items()
                if k in state or not (k in classifiers or k.endswith("num_batches_tracked"))}
    problems = mismatches(expected, state)
    if problems:
        raise InitFromError(f"model.init_from={path} is another architecture than this run's model: "
                            "parameters " + "; ".join(problems))
    model.load_state_dict(state, strict=False)
    return f"init_from: {len(state)} tensors from {path.name} ({kind}){note}"
