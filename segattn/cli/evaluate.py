"""Evaluation entry point: ``python evaluate.py ckpt=<.ckpt | run folder> [data=...] [eval.KEY=VALUE ...]``.

Rebuilds the model and the data from the config saved in the checkpoint (``eval.backend=onnxruntime
eval.model=<file.onnx>``: the exported model instead of the checkpoint's weights) and runs
:func:`segattn.evaluation.evaluator.evaluate_split` (images without labels: ``segattn-predict``, which
follows the same test pipeline). See ``conf/eval.yaml``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import hydra
from omegaconf import DictConfig

from segattn.cli.config import CONFIG_DIR
from segattn.cli.errors import one_line_errors
from segattn.evaluation.settings import EvaluationError, apply_recipe, check_settings, data_config, default_out
from segattn.inference.pipeline import predictor_passes
from segattn.utils.device import resolve_device


def _model(ckpt: dict, ckpt_path: Path, ev: DictConfig):
    """The checkpoint's Segmentor, or with ``eval.backend=onnxruntime`` the ONNX file ``eval.model``."""
    from segattn.models.checkpoint import build_model

    if ev.get("backend", "pytorch") == "pytorch":
        return build_model(ckpt, ckpt_path)
    from segattn.export.runtime import OnnxRuntimeModel

    model = OnnxRuntimeModel(ev.model)
    if model.num_classes != len(ckpt["class_names"]) or model.align_corners != ckpt["config"]["model"]["align_corners"]:
        raise EvaluationError(f"eval.model={ev.model} predicts {model.num_classes} classes with align_corners="
                              f"{model.align_corners}; the checkpoint {ckpt_path} has {len(ckpt['class_names'])} with "
                              f"{ckpt['config']['model']['align_corners']}: export that checkpoint")
    return model


def evaluate(cfg: DictConfig) -> Optional[dict]:
    """Run the evaluation described by the composed ``eval.yaml`` config."""
    from hydra.utils import instantiate

    from segattn.checkpoints import CheckpointError, resolve_checkpoint
    from segattn.convert import read_any
    from segattn.export.errors import ExportError
    from segattn.utils.io import file_sha256

    ev = cfg.eval
    check_settings(ev)
    try:
        ckpt_path = resolve_checkpoint(str(cfg.ckpt))
        ckpt = read_any(ckpt_path)  # its stored config names segattn's classes only (checked)
    except CheckpointError as err:
        raise EvaluationError(str(err)) from None
    apply_recipe(ev, ckpt["config"].get("eval"))
    check_settings(ev)
    data_cfg = data_config(ckpt["config"]["data"], cfg.data)
    datamodule = instantiate(data_cfg, val_split=ev.split)
    trained = list(ckpt["class_names"])
    if datamodule.num_classes != len(trained):
        raise EvaluationError(
            f"{ckpt_path} was trained on {len(trained)} classes ({', '.join(trained[:4])}, ...) but the dataset "
            f"{data_cfg.dataset.get('_target_')} has {datamodule.num_classes}: "
            f"evaluate it on the data it was trained for"
        )
    if list(datamodule.class_names) != trained and not ev.allow_other_class_names:
        differ = [f"{i}: {a!r} vs {b!r}" for i, (a, b) in enumerate(zip(datamodule.class_names, trained)) if a != b]
        raise EvaluationError(
            f"the dataset's class names differ from those {ckpt_path} was trained on (dataset vs checkpoint, "
            f"{len(differ)} of {len(trained)}: {'; '.join(differ[:3])}): it is another dataset's model; pass "
            f"eval.allow_other_class_names=true to score it on these classes all the same")
    try:
        model = _model(ckpt, ckpt_path, ev)
    except (CheckpointError, ExportError) as err:
        raise EvaluationError(str(err)) from None
    out = Path(ev.out).expanduser() if ev.out else default_out(ckpt_path, ev)
    device = resolve_device(ev.device)
    settings = {
        "checkpoint": str(ckpt_path.resolve()), "checkpoint_sha256": file_sha256(ckpt_path),
        "head": ckpt["config"]["head"].get("_target_"), "backbone_depth": ckpt["config"]["backbone"].get("depth"),
        "backend": ev.get("backend", "pytorch"), "mode": ev.mode, "scales": list(ev.scales), "flip": bool(ev.flip),
    }
    if settings["backend"] == "onnxruntime":
        settings["onnx_model"] = str(Path(ev.model).expanduser().resolve())
    if ev.mode == "slide":
        settings.update(crop_size=list(ev.crop_size), stride=list(ev.stride))
    from segattn.evaluation.distributed import shutdown
    from segattn.evaluation.evaluator import evaluate_split

    try:
        return evaluate_split(model, datamodule, out, settings, ev.split, device, predictor_passes(ev),
                              bool(ev.save_predictions))
    finally:
        shutdown()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
@one_line_errors("segattn-eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
