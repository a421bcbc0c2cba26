"""The settings the tensors do not show (dataset, align_corners, output stride), with where each came from:
the user's argument, else what the file itself says (the whole config text mmseg 0.x zoo files keep in
``meta["config"]``, read as Python syntax and never run), else the zoo's file-name rules."""
from __future__ import annotations

import ast
import math
import re
from typing import Any, Optional

# Dataset name (as the zoo's file names spell it; conf/data/ has it with "_" for "-") -> its segattn.data class
DATASETS = {"cityscapes": "cityscapes.CityscapesDataset", "ade20k": "ade20k.ADE20KDataset",
            "voc12": "voc.VOC12Dataset", "voc12aug": "voc.VOC12AugDataset",
            "pascal_context": "pascal_context.PascalContextDataset",
            "pascal_context_59": "pascal_context.PascalContext59Dataset", "lip": "lip.LIPDataset",
            "coco-stuff164k": "coco_stuff.COCOStuff164kDataset", "coco-stuff10k": "coco_stuff.COCOStuff10kDataset"}
DATASET_TYPES = {"CityscapesDataset": "cityscapes", "ADE20KDataset": "ade20k",  # mmseg's dataset classes
                 "PascalVOCDataset": "voc12aug",  # mmseg's VOC zoo models are all trained on voc12aug
                 "PascalContextDataset": "pascal_context", "PascalContextDataset59": "pascal_context_59",
                 "LIPDataset": "lip"}


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:  # a name or an expression: not a setting we can read
        return None


def _dict_calls(tree: ast.AST):
    """Every ``dict(...)`` call of the config text, with its keywords."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            yield {k.arg: k.value for k in node.keywords if k.arg}


def described_settings(meta: dict) -> dict:
    """``dataset`` / ``align_corners`` / ``output_stride`` that ``meta["config"]`` states (those it states)."""
    text = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(text, str):
        return {}
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    found: dict = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "dataset_type" for t in node.targets):
            dataset = DATASET_TYPES.get(_literal(node.value))
            if dataset:
                found["dataset"] = dataset
    for call in _dict_calls(tree):
        if "decode_head" in call and isinstance(call["decode_head"], ast.Call):
            head = {k.arg: k.value for k in call["decode_head"].keywords if k.arg}
            if isinstance(_literal(head.get("align_corners", ast.Constant(None))), bool):
                found["align_corners"] = _literal(head["align_corners"])
        if "strides" in call and "dilations" in call:
            strides = _literal(call["strides"])
            if isinstance(strides, (list, tuple)) and all(isinstance(s, int) for s in strides):
                found["output_stride"] = 4 * math.prod(strides)  # the stem's stride 4, then the stages'
    return found


def dataset_from_name(file_name: str) -> Optional[str]:
    """The dataset a zoo file name names (the longest match: ``pascal_context_59`` before ``pascal_context``)."""
    return next((d for d in sorted(DATASETS, key=len, reverse=True)
                 if re.search(rf"(^|[_\-.]){d}([_\-.]|$)", file_name)), None)


def release_settings(fmt: str, meta: dict, file_name: str, dataset: Optional[str] = None,
                     align_corners: Optional[bool] = None) -> tuple[dict, list[str]]:
    """``{"dataset", "align_corners", "output_stride"}`` of a ``fmt`` release and one note per setting naming its
    source (``output_stride`` None: the reader's own, fixed for the official CCNet / DANet releases)."""
    described = described_settings(meta) if fmt == "mmseg" else {}
    chosen, notes = {}, []

    def choose(key: str, given, from_name, fallback, fallback_source: str) -> None:
        for value, source in ((given, "given"), (described.get(key), "the file's meta config"),
                              (from_name, "the file name"), (fallback, fallback_source)):
            if value is not None:
                chosen[key] = value
                notes.append(f"{key}={value} ({source})")
                return
        chosen[key] = None

    choose("dataset", dataset, dataset_from_name(file_name), None, "")
    if fmt == "mmseg":
        choose("align_corners", align_corners, True if "769x769" in file_name else None, False,
               "mmseg's default for this crop size")
        choose("output_stride", None, 16 if "-d16" in file_name else None, 8, "mmseg's -d8 default")
    else:
        choose("align_corners", align_corners, None, True, f"the official {fmt} release's")
        chosen["output_stride"] = None
    return chosen, notes
