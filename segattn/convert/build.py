"""Turn a source file into a segattn checkpoint: weights + resolved config + class names (+ palette)."""
from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Optional, Sequence

import torch
from omegaconf import OmegaConf

from segattn.checkpoints import checked_segattn, is_segattn_checkpoint, read_file, state_dict_of
from segattn.convert.errors import ConversionError
from segattn.convert.formats import plan_for
from segattn.convert.mapping import load_strict
from segattn.convert.plan import Plan
from segattn.convert.release_settings import DATASETS, release_settings


def _config_dir() -> Path:
    from segattn.configs import CONFIG_DIR

    return CONFIG_DIR


def dataset_info(name: str) -> tuple[tuple[str, ...], tuple]:
    """Class names and palette of a built-in dataset."""
    if name not in DATASETS:
        raise ConversionError(f"--dataset must be one of {list(DATASETS)}, got {name!r}")
    module, cls = DATASETS[name].rsplit(".", 1)
    dataset = getattr(import_module(f"segattn.data.{module}"), cls)
    return dataset.CLASSES, dataset.PALETTE


def test_pipeline(fmt: str, dataset: Optional[str], align_corners: bool) -> tuple[dict, dict]:
    """The release's test settings: ``(eval section, val_transform update)`` of the converted config.

    mmseg 769x769 Cityscapes (the align_corners models): resize to 2049x1025 (keep ratio), slide 769 / stride 513; other mmseg
    Cityscapes: (2048, 1024), whole; mmseg ADE20K and VOC: (2048, 512), whole; mmseg PASCAL Context: (520, 520),
    slide 480 / 320; official CCNet: slide 769 / 513.
    """
    slide = {"mode": "slide", "crop_size": [769, 769], "stride": [513, 513]}
    whole = {"mode": "whole", "crop_size": None, "stride": None}
    if fmt == "ccnet":
        return slide, {}
    if fmt != "mmseg" or dataset is None:
        return whole, {}
    if dataset == "cityscapes":
        return (slide, {"resize_scale": [2049, 1025]}) if align_corners else \
            (whole, {"resize_scale": [2048, 1024]})
    if dataset.startswith("pascal_context"):
        return {"mode": "slide", "crop_size": [480, 480], "stride": [320, 320]}, \
            {"resize_short": None, "resize_scale": [520, 520]}
    return whole, {"resize_short": None, "resize_scale": [2048, 512]}


def _config(plan: Plan, dataset: Optional[str], class_names: Sequence[str], palette, align_corners: bool) -> dict:
    conf = _config_dir()
    backbone = OmegaConf.load(conf / "backbone" / f"resnet{plan.backbone['depth']}.yaml")
    backbone.update(plan.backbone)
    head = OmegaConf.load(conf / "head" / f"{plan.head['name']}.yaml")
    head.update({k: v for k, v in plan.head.items() if k != "name"})
    model = OmegaConf.load(conf / "train.yaml").model
    model.update(plan.model)
    model.align_corners = align_corners
    if dataset:
        data = OmegaConf.load(conf / "data" / f"{dataset.replace('-', '_')}.yaml")
    else:
        data = OmegaConf.load(conf / "data" / "folder.yaml")
        data.dataset.classes = list(class_names)
        data.dataset.palette = [list(c) for c in palette] if palette else None
    test, val_transform = test_pipeline(plan.format, dataset, align_corners)
    data.val_transform.update(val_transform)
    cfg = OmegaConf.create({"backbone": backbone, "head": head, "model": model, "data": data, "eval": test})
    return OmegaConf.to_container(cfg, resolve=False)


def read_source(src: str | Path, fmt: str = "auto") -> tuple[Plan, dict]:
    """The plan of a foreign file and its ``meta`` dict; a segattn checkpoint is refused as one already."""
    src = Path(src).expanduser()
    data = read_file(src)
    if is_segattn_checkpoint(data):
        raise ConversionError(f"{src} is a segattn checkpoint already: load it as it is (no conversion needed)")
    return _plan(data, src, fmt)


def _plan(data: dict, src: Path, fmt: str) -> tuple[Plan, dict]:
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    return plan_for(state_dict_of(data, src), str(src), src.name, fmt), meta


def class_names(src: Path, meta: dict, dataset: Optional[str], num_classes: int) -> tuple[list, Optional[list]]:
    """Class names and palette: ``meta["CLASSES"]`` / ``meta["dataset_meta"]["classes"]`` (mmseg 1.x), else ``dataset``."""
    names, palette = dataset_info(dataset) if dataset else (None, None)
    dataset_meta = meta.get("dataset_meta") or {}
    given = meta.get("CLASSES") or dataset_meta.get("classes")
    if given:
        names, palette = tuple(given), meta.get("PALETTE") or dataset_meta.get("palette") or palette
    if names is None:
        raise ConversionError(f"{src.name} names no classes (no meta CLASSES, no dataset in the file name): "
                              f"pass --dataset {' or '.join(DATASETS)}")
    if len(names) != num_classes:
        raise ConversionError(f"the classifier has {num_classes} outputs but {len(names)} class names were given")
    return list(names), [list(map(int, c)) for c in palette] if palette is not None else None


def _summary(plan: Plan, config: dict, dataset: Optional[str]) -> str:
    b, h = plan.backbone, plan.head
    return (f"{plan.format}: {h['name']} head (channels {h['channels']}) on ResNet-{b['depth']} "
            f"({b['stem']} stem {b['stem_channels']}, base {b['base_channels']}, output stride {b['output_stride']}), "
            f"{plan.num_classes} classes ({dataset or 'names from meta'}), aux head "
            f"{'yes' if config['model']['aux_weight'] > 0 else 'no'}, align_corners={config['model']['align_corners']}, "
            f"{len(plan.state)} tensors; assumed: {'; '.join(plan.notes)}")


def convert_checkpoint(src: str | Path, fmt: str = "auto", dataset: Optional[str] = None,
                       align_corners: Optional[bool] = None) -> tuple[dict, str]:
    """Return ``(segattn checkpoint dict, summary line)`` for ``src``; raises ConversionError with the reason.

    ``dataset``, ``align_corners`` (and the output stride) default to what the file's ``meta`` config says,
    else to the zoo's file-name rules (:func:`segattn.convert.release_settings.release_settings`).
    """
    src = Path(src).expanduser()
    return _converted(*read_source(src, fmt), src, dataset, align_corners)


def _converted(plan: Plan, meta: dict, src: Path, dataset: Optional[str] = None,
               align_corners: Optional[bool] = None) -> tuple[dict, str]:
    from segattn.models.build import build_segmentor

    if dataset is not None and dataset not in DATASETS:
        raise ConversionError(f"--dataset must be one of {list(DATASETS)}, got {dataset!r}")
    settings, notes = release_settings(plan.format, meta, src.name, dataset, align_corners)
    plan.notes = [*notes, *plan.notes]
    if settings["output_stride"] is not None:
        plan.backbone["output_stride"] = settings["output_stride"]
    dataset, align_corners = settings["dataset"], settings["align_corners"]
    names, palette = class_names(src, meta, dataset, plan.num_classes)
    config = _config(plan, dataset, names, palette, align_corners)
    model = build_segmentor(config, plan.num_classes)
    load_strict(model, plan.state, src.name, plan.origin)
    ckpt = {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "config": config,
            "class_names": names, "palette": palette,
            "converted_from": {"file": src.name, "format": plan.format, "notes": plan.notes}}
    return ckpt, _summary(plan, config, dataset)


def read_any(path: str | Path) -> dict:
    """A segattn checkpoint dict from a segattn file (its stored config checked), or from a published file the
    converter reads, converted in memory (``ckpt["converted_from"]`` names its format; the summary is printed)."""
    import sys

    path = Path(path).expanduser()
    data = read_file(path)
    if is_segattn_checkpoint(data):
        return checked_segattn(data, path)
    try:
        ckpt, summary = _converted(*_plan(data, path, "auto"), path)
    except ConversionError as err:
        raise ConversionError(f"{path} is neither a segattn checkpoint (state_dict, config, class_names) nor a release "
                              f"segattn-convert reads: {str(err).removeprefix(f'{path}: ')}") from None
    print(f"converted in memory: {summary}", file=sys.stderr)
    return ckpt


def save_checkpoint(ckpt: dict, dst: str | Path) -> None:
    """Write atomically (temporary file + rename): a failure leaves nothing at ``dst``."""
    from segattn.utils.io import atomic_path

    with atomic_path(Path(dst).expanduser()) as tmp:
        torch.save(ckpt, tmp)
