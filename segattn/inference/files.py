"""Images, folders and globs in; colour masks, overlays and label-id PNGs out (``segattn-predict``, the demo)."""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from segattn.inference.images import ImageInputError, read_rgb

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _glob_root(pattern: Path) -> Path:
    """The folder part of a glob before its first wildcard (``photos/*/a.png`` -> ``photos``)."""
    parts = []
    for part in pattern.parts[:-1]:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def output_names(found: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """``(path, relative name)`` with the suffix dropped from each name (``a.jpg`` -> ``a``), except where two
    inputs would then share a name (``a.jpg`` and ``a.png``): those keep it (``a_jpg``, ``a_png``)."""
    stems = [name.with_suffix("") for _, name in found]
    shared = {stem for stem in stems if stems.count(stem) > 1}
    return [(path, stem.with_name(f"{stem.name}_{name.suffix[1:]}") if stem in shared else stem)
            for (path, name), stem in zip(found, stems)]


def find_images(specs: str | Sequence[str]) -> list[tuple[Path, Path]]:
    """Image files, folders (searched recursively) or globs -> ``(path, output name)``: the path relative to the
    folder or the glob's root, without its suffix (see :func:`output_names`), so that no two outputs collide."""
    found = []
    for spec in [specs] if isinstance(specs, (str, Path)) else specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            root = _glob_root(path)
            found += [(Path(p), Path(p).relative_to(root)) for p in sorted(glob.glob(str(path), recursive=True))
                      if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise ImageInputError(f"images={specs}: expected image files ({', '.join(IMAGE_SUFFIXES)}), folders or globs "
                              f"that match some, found none")
    unique = list(dict.fromkeys(found))  # a file named twice is predicted once
    names = [name for _, name in unique]
    if len(set(names)) != len(names):  # the same relative path from two of the given folders or globs
        clash = next(n for n in names if names.count(n) > 1)
        paths = [str(path) for path, name in unique if name == clash]
        raise ImageInputError(f"images={specs}: {' and '.join(paths)} would both be written as "
                              f"{clash.with_suffix('')}_color.png; predict them in separate runs (other out=)")
    return output_names(unique)


def predict_files(predictor, files: list[tuple[Path, Path]], out: Path, palette, transform, label_ids: bool = True) -> int:
    """Predict every ``(path, name)`` of :func:`find_images` at its own size; write ``out/<name>_color.png``,
    ``_overlay.png`` (and ``_labels.png``). ``transform`` maps an H x W x 3 uint8 RGB image to the
    ``1 x 3 x h x w`` model input (:func:`segattn.inference.pipeline.input_transform`)."""
    from segattn.evaluation.writers import write_prediction_images

    for path, name in tqdm(files, desc="predict", unit="img", dynamic_ncols=True):
        image = read_rgb(path)
        pred = predictor(transform(image), image.shape[:2])[0].to(torch.uint8).cpu().numpy()
        write_prediction_images(out / name, image, pred, palette, label_ids)
    return len(files)
