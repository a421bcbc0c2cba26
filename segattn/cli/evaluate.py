"""Evaluation entry point: ``python evaluate.py ckpt=<.ckpt | run folder> [data=...] [eval.KEY=VALUE ...]``.

Rebuilds the model and the data from the config saved in the checkpoint, predicts every image of
``eval.split`` (whole / sliding window, multi-scale, flip), accumulates one confusion matrix and
writes the reports of :mod:`segattn.evaluation.report` to ``eval.out``. See ``conf/eval.yaml``.
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Optional

import hydra
from omegaconf import DictConfig, OmegaConf

from segattn.cli.config import CONFIG_DIR
from segattn.constants import IGNORE_INDEX
from segattn.utils.device import DeviceError, resolve_device
from segattn.utils.precision import INFERENCE_PRECISIONS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class EvaluationError(ValueError):
    """A checkpoint, dataset or setting the user gave cannot be evaluated (message says why)."""


def resolve_checkpoint(ckpt: str) -> Path:
    """A ``.ckpt`` file, or a run folder -> its ``checkpoints/best.ckpt`` (else ``checkpoints/last.ckpt``)."""
    path = Path(ckpt).expanduser()
    if path.is_dir():
        candidates = [path / "checkpoints" / "best.ckpt", path / "checkpoints" / "last.ckpt"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise EvaluationError(f"ckpt={ckpt}: run folder without checkpoints/best.ckpt or checkpoints/last.ckpt")
        return found
    if not path.is_file():
        raise EvaluationError(f"ckpt={ckpt}: no such file or folder (expected a .ckpt file or a training run folder)")
    return path


def load_checkpoint(path: Path) -> dict:
    """The checkpoint dict; it must hold ``state_dict``, ``config`` and ``class_names`` of a segattn run."""
    from segattn.models.checkpoint import CheckpointError, read_checkpoint

    try:
        return read_checkpoint(path)
    except CheckpointError as err:
        raise EvaluationError(str(err)) from None


def build_model(ckpt: dict, path: Path):
    """The Segmentor of the checkpoint's config with its weights (eval mode, on CPU)."""
    from segattn.models.checkpoint import CheckpointError
    from segattn.models.checkpoint import build_model as build

    try:
        return build(ckpt, path)
    except CheckpointError as err:
        raise EvaluationError(str(err)) from None


def data_config(saved: dict, given: DictConfig) -> DictConfig:
    """The checkpoint's data config, replaced by a chosen ``data=<group>``, updated by ``data.KEY=VALUE``."""
    given = {k: v for k, v in OmegaConf.to_container(given, resolve=True).items() if v is not None}
    if "_target_" in given:
        return OmegaConf.create(given)
    return OmegaConf.merge(OmegaConf.create(saved), given)


def default_out(ckpt_path: Path, ev: DictConfig) -> Path:
    """``<run folder>/eval/<ckpt stem>_<split>_<mode>[_ms][_flip]`` (or ``demo_<folder>``)."""
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    if ev.images:
        return run / "eval" / f"demo_{Path(ev.images).name}"
    name = f"{ckpt_path.stem}_{ev.split}_{ev.mode}"
    name += ("_ms" if len(ev.scales) > 1 else "") + ("_flip" if ev.flip else "")
    return run / "eval" / name


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()



class Predictor:
    """``predict_probabilities`` with the ``eval`` settings; times the model part (seconds, summed)."""

    def __init__(self, model, ev: DictConfig, num_classes: int, device):
        import torch

        from segattn.utils.precision import resolve_precision, use_channels_last

        self.model, self.device, self.num_classes, self.seconds = model.to(device), device, num_classes, 0.0
        self.precision = resolve_precision(ev.precision, device)  # auto: the device's fastest
        if use_channels_last("auto", self.precision):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.kwargs = dict(mode=ev.mode, crop_size=tuple(ev.crop_size), stride=tuple(ev.stride),
                           scales=tuple(ev.scales), flip=bool(ev.flip))

    def __call__(self, image, out_size):
        """Bx3xhxw normalised image -> BxHxW train ids (long, on the device) at ``out_size``."""
        import torch

        from segattn.inference.passes import predict_probabilities
        from segattn.utils.precision import inference_autocast

        start = time.perf_counter()
        with inference_autocast(self.precision, self.device):
            probs = predict_probabilities(self.model, image.to(self.device), **self.kwargs,
                                   num_classes=self.num_classes, out_size=tuple(out_size))
        pred = probs.argmax(1)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return pred


def _has_labels(dataset) -> bool:
    return not bool((dataset[0]["mask"] == IGNORE_INDEX).all())


class InstanceMaps:
    """The ``*_gtFine_instanceIds.png`` of a Cityscapes split, feeding the official iIoU."""

    def __init__(self, dataset):
        from segattn.evaluation.cityscapes_extras import InstanceIoU, instance_ids_path

        self.paths = {p.name: instance_ids_path(dataset.root, dataset.split, p.name) for p, _ in dataset.samples}
        missing = sum(not p.is_file() for p in self.paths.values())
        self.missing = f"{missing} of {len(self.paths)} images have no *_gtFine_instanceIds.png" if missing else None
        self.metric = InstanceIoU()

    def update(self, name: str, pred) -> None:
        """``pred``: HxW train ids of the image ``name`` (relative to the split's image folder)."""
        import cv2
        import numpy as np

        path = self.paths[Path(name).name]
        instance_ids = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if instance_ids is None:
            raise EvaluationError(f"cannot decode instance map {path}")
        self.metric.update(pred, instance_ids.astype(np.int64))


class PredictionWriter:
    """``eval.save_predictions``: Cityscapes label-id PNGs in a folder of their own, colour masks and overlays."""

    def __init__(self, out: Path, dataset, palette, cityscapes: bool):
        self.results = out / "cityscapes_results" if cityscapes else None
        self.visual, self.dataset, self.palette = out / "visual", dataset, palette

    def __call__(self, name: str, pred) -> None:
        """``pred``: HxW uint8 train ids of the image ``name`` (relative to the split's image folder)."""
        from segattn.data.cityscapes import train_ids_to_label_ids
        from segattn.data.files import read_image
        from segattn.evaluation.report import save_color_png, save_label_png, save_overlay

        if self.results is not None:  # flat folder of <city>_<seq>_<frame>_leftImg8bit.png only
            save_label_png(self.results / Path(name).name, train_ids_to_label_ids(pred))
        base = str(Path(name).with_suffix(""))
        save_color_png(self.visual / f"{base}_color.png", pred, self.palette)
        image = read_image(self.dataset.image_dir() / name)
        save_overlay(self.visual / f"{base}_overlay.png", image, pred, self.palette)

    def folders(self) -> dict:
        folders = {"visual_folder": str(self.visual)}
        if self.results is not None:
            folders["cityscapes_results_folder"] = str(self.results)
        return folders


def evaluate_split(model, datamodule, ev: DictConfig, out: Path, settings: dict) -> Optional[dict]:
    """Predict every image of ``ev.split``, write predictions (optional) and reports; return the metrics."""
    import numpy as np
    import torch
    from torchmetrics.classification import MulticlassConfusionMatrix
    from tqdm import tqdm

    from segattn.data.cityscapes import CityscapesDataset
    from segattn.evaluation.cityscapes_extras import category_iou
    from segattn.evaluation.metrics import format_table, metrics_from_confusion
    from segattn.evaluation.report import write_reports

    from segattn.evaluation.distributed import init_from_env, prepare_once, shard_loader, sum_across

    rank, world, device = init_from_env(resolve_device(ev.device))  # device first, then the process group
    prepare_once(datamodule, rank)
    loader = datamodule.val_dataloader()
    dataset = loader.dataset
    loader = shard_loader(loader, rank, world)
    labelled = _has_labels(dataset)
    if not labelled and not ev.save_predictions:
        raise EvaluationError(
            f"split '{ev.split}' of {type(dataset).__name__} under {dataset.root} has no labels (its masks are "
            f"all 255), so no metrics can be computed: evaluate a labelled split (eval.split=val), or export "
            f"predictions only with eval.save_predictions=true"
        )
    predictor = Predictor(model, ev, datamodule.num_classes, device)
    confusion = MulticlassConfusionMatrix(datamodule.num_classes, ignore_index=IGNORE_INDEX).to(device)
    is_cityscapes = isinstance(dataset, CityscapesDataset)
    instances = InstanceMaps(dataset) if is_cityscapes and labelled else None
    use_instances = instances is not None and not instances.missing
    if instances is not None and instances.missing:
        print(f"iIoU skipped: {instances.missing}", file=sys.stderr)
    writer = PredictionWriter(out, dataset, datamodule.palette, is_cityscapes) if ev.save_predictions else None
    start = time.perf_counter()
    for batch in tqdm(loader, desc=f"evaluate {ev.split}", unit="batch", dynamic_ncols=True, disable=rank > 0):
        mask = batch["mask"].to(device)
        pred = predictor(batch["image"], mask.shape[-2:])
        if labelled:
            confusion.update(pred, mask)
        if use_instances or writer is not None:
            for name, p in zip(batch["name"], pred.to(torch.uint8).cpu().numpy()):
                if use_instances:
                    instances.update(name, p)
                if writer is not None:
                    writer(name, p)
    count = len(dataset)
    settings.update({
        "dataset": type(dataset).__name__, "data_root": str(dataset.root), "split": ev.split, "images": count,
        "labelled": labelled, "device": str(device), "precision": predictor.precision,
        "seconds_per_image": round(predictor.seconds / max(len(loader.dataset), 1), 4),
        "wall_seconds_per_image": round((time.perf_counter() - start) / count, 4),
        **(writer.folders() if writer else {}),
    })
    settings["processes"] = world
    matrix = confusion.compute().cpu() if labelled else None  # summed over processes
    if use_instances:
        for name in ("tp", "fn"):
            setattr(instances.metric, name, sum_across(getattr(instances.metric, name)))
        for name in ("category_tp", "category_fn"):
            table = getattr(instances.metric, name)
            setattr(instances.metric, name, dict(zip(table, sum_across(np.array(list(table.values()))))))
    if rank > 0:
        return None
    if not labelled:
        write_reports(out, None, None, settings)
        print(f"No labels in split '{ev.split}': predictions written to {out}")
        return None
    metrics = metrics_from_confusion(matrix, datamodule.class_names)
    cityscapes = None
    if is_cityscapes:
        cityscapes = category_iou(matrix)
        cityscapes.update(instances.metric.compute(matrix) if use_instances else {"iIoU_missing": instances.missing})
    write_reports(out, metrics, matrix, settings, cityscapes)
    print(format_table(metrics))
    print(f"\nReports written to {out}")
    return metrics


def demo(model, datamodule, ev: DictConfig, out: Path) -> int:
    """Colour masks and overlays for every image under ``ev.images``; returns the image count."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from segattn.data.files import read_image
    from segattn.data.transforms import build_val_transform
    from segattn.evaluation.report import save_color_png, save_overlay

    folder = Path(ev.images).expanduser()
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise EvaluationError(
            f"eval.images={ev.images}: expected a folder of images ({', '.join(IMAGE_SUFFIXES)}), found none"
        )
    transform = build_val_transform(**datamodule.val_transform_kwargs)
    predictor = Predictor(model, ev, datamodule.num_classes, resolve_device(ev.device))
    for path in tqdm(files, desc="demo", unit="img", dynamic_ncols=True):
        image = read_image(path)
        x = transform(image=image, mask=np.zeros(image.shape[:2], np.uint8))["image"]
        pred = predictor(x[None], image.shape[:2])[0].to(torch.uint8).cpu().numpy()
        base = str(path.relative_to(folder).with_suffix(""))
        save_color_png(out / f"{base}_color.png", pred, datamodule.palette)
        save_overlay(out / f"{base}_overlay.png", image, pred, datamodule.palette)
    print(f"{len(files)} colour masks and overlays written to {out}")
    return len(files)


def _positive_list(value, length: Optional[int] = None) -> bool:
    return (OmegaConf.is_list(value) and len(value) > 0 and (length is None or len(value) == length)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value))


RECIPE_DEFAULTS = {"mode": "whole", "crop_size": [769, 769], "stride": [513, 513]}


def apply_recipe(ev: DictConfig, recipe: Optional[dict]) -> None:
    """Fill the ``eval`` keys left null with the checkpoint's recipe (its config's ``eval``), else the defaults."""
    for key, default in RECIPE_DEFAULTS.items():
        if ev[key] is None:
            value = (recipe or {}).get(key)
            ev[key] = value if value is not None else default


def check_settings(ev: DictConfig) -> None:
    """Raise one message for a malformed ``eval`` setting (keys still null are filled later from the recipe)."""
    if ev.mode is not None and ev.mode not in ("whole", "slide"):
        raise EvaluationError(f"eval.mode must be whole or slide, got {ev.mode!r}")
    if not _positive_list(ev.scales):
        raise EvaluationError(
            f"eval.scales must be a non-empty list of positive numbers, e.g. [0.75,1.0,1.25]; got {ev.scales}"
        )
    if ev.precision not in INFERENCE_PRECISIONS:
        raise EvaluationError(f"eval.precision must be one of {list(INFERENCE_PRECISIONS)}, got {ev.precision!r}")
    for key in ("crop_size", "stride"):
        if ev.mode == "slide" and ev[key] is not None and not _positive_list(ev[key], 2):
            raise EvaluationError(f"eval.{key} must be two positive integers [h,w], e.g. [769,769]; got {ev[key]}")
    if ev.mode == "slide" and None not in (ev.stride, ev.crop_size) and any(s > c for s, c in zip(ev.stride, ev.crop_size)):
        raise EvaluationError(f"eval.stride must not exceed eval.crop_size (windows would leave pixels unseen): "
                              f"got stride {list(ev.stride)} with crop_size {list(ev.crop_size)}")


def evaluate(cfg: DictConfig) -> Optional[dict]:
    """Run the evaluation (or the demo) described by the composed ``eval.yaml`` config."""
    from hydra.utils import instantiate

    ev = cfg.eval
    check_settings(ev)
    ckpt_path = resolve_checkpoint(str(cfg.ckpt))
    ckpt = load_checkpoint(ckpt_path)
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
    model = build_model(ckpt, ckpt_path)
    out = Path(ev.out).expanduser() if ev.out else default_out(ckpt_path, ev)
    if ev.images:
        demo(model, datamodule, ev, out)
        return None
    settings = {
        "checkpoint": str(ckpt_path.resolve()), "checkpoint_sha256": sha256(ckpt_path),
        "head": ckpt["config"]["head"].get("_target_"), "backbone_depth": ckpt["config"]["backbone"].get("depth"),
        "mode": ev.mode, "scales": list(ev.scales), "flip": bool(ev.flip),
    }
    if ev.mode == "slide":
        settings.update(crop_size=list(ev.crop_size), stride=list(ev.stride))
    from segattn.evaluation.distributed import shutdown

    try:
        return evaluate_split(model, datamodule, ev, out, settings)
    finally:
        shutdown()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    from segattn.data.errors import DatasetError

    try:
        evaluate(cfg)
    except (EvaluationError, DatasetError, DeviceError) as err:
        raise SystemExit(f"evaluate.py: error: {err}") from None


if __name__ == "__main__":
    main()
