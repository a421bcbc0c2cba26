"""Evaluation entry point: ``python evaluate.py ckpt=<.ckpt | run folder> [data=...] [eval.KEY=VALUE ...]``.

Rebuilds the model and the data from the config saved in the checkpoint (``eval.backend=onnxruntime
eval.model=<file.onnx>``: the exported model instead of the checkpoint's weights) and runs
:func:`segattn.evaluation.evaluator.evaluate_split`; ``eval.images=...`` is ``segattn-predict`` with the
checkpoint's test pipeline. See ``conf/eval.yaml``.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import hydra
from omegaconf import DictConfig

from segattn.cli.config import CONFIG_DIR
from segattn.evaluation.settings import EvaluationError, apply_recipe, check_settings, data_config, default_out, passes
from segattn.utils.device import DeviceError, resolve_device


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
    """Run the evaluation (or the image demo) described by the composed ``eval.yaml`` config."""
    from hydra.utils import instantiate

    from segattn.api import read_any_checkpoint
    from segattn.export.errors import ExportError
    from segattn.models.checkpoint import CheckpointError, resolve_checkpoint
    from segattn.utils.io import file_sha256

    ev = cfg.eval
    check_settings(ev)
    try:
        ckpt_path = resolve_checkpoint(str(cfg.ckpt))
        ckpt = read_any_checkpoint(ckpt_path)
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
    if list(datamodule.class_names) != trained:
        print(f"warning: the dataset's class names differ from the checkpoint's: "
              f"{list(datamodule.class_names)[:3]}... vs {trained[:3]}...", file=sys.stderr)
    try:
        model = _model(ckpt, ckpt_path, ev)
    except (CheckpointError, ExportError) as err:
        raise EvaluationError(str(err)) from None
    out = Path(ev.out).expanduser() if ev.out else default_out(ckpt_path, ev)
    device = resolve_device(ev.device)
    if ev.images:
        _demo(model, datamodule, ev, out, device)
        return None
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
        return evaluate_split(model, datamodule, out, settings, ev.split, device, passes(ev), bool(ev.save_predictions))
    finally:
        shutdown()


def _demo(model, datamodule, ev: DictConfig, out: Path, device) -> None:
    """``eval.images``: :func:`segattn.inference.files.predict_files` with the checkpoint's val transform."""
    from segattn.data.transforms import build_val_transform
    from segattn.inference.files import find_images, predict_files
    from segattn.inference.images import ImageInputError
    from segattn.inference.predictor import Predictor

    transform = build_val_transform(**datamodule.val_transform_kwargs)
    try:
        files = find_images(str(ev.images))
    except ImageInputError as err:
        raise EvaluationError(str(err)) from None
    count = predict_files(Predictor(model, device, **passes(ev)), files, out, datamodule.palette, label_ids=False,
                          transform=lambda image: transform(image=image)["image"][None])
    print(f"{count} colour masks and overlays written to {out}")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    from segattn.data.errors import DatasetError

    try:
        evaluate(cfg)
    except (EvaluationError, DatasetError, DeviceError) as err:
        raise SystemExit(f"evaluate.py: error: {err}") from None


if __name__ == "__main__":
    main()
