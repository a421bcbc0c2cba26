"""Images, folders and globs in; colour masks, overlays and label-id PNGs out (``segattn-predict``, the demo)."""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from segattn.inference.images import ImageInputError, read_rgb, to_input

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def find_images(specs: str | Sequence[str]) -> list[tuple[Path, Path]]:
    """Image files, folders (searched recursively) or globs -> ``(path, name relative to its folder or glob root)``."""
    found = []
    for spec in [specs] if isinstance(specs, (str, Path)) else specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found += [(p, p.relative_to(path)) for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            found += [(Path(p), Path(Path(p).name)) for p in sorted(glob.glob(str(path), recursive=True))
                      if Path(p).suffix.lower() in IMAGE_SUFFIXES]
    if not found:
        raise ImageInputError(f"images={specs}: expected image files ({', '.join(IMAGE_SUFFIXES)}), folders or globs "
                              f"that match some, found none")
    return found


def predict_files(predictor, files: list[tuple[Path, Path]], out: Path, palette, label_ids: bool = True,
                  transform=to_input) -> int:
    """Predict every ``(path, name)`` at its own size; write ``out/<name>_color.png``, ``_overlay.png`` (and
    ``_labels.png``). ``transform`` maps an H x W x 3 uint8 image to the ``1 x 3 x h x w`` model input."""
    from segattn.evaluation.writers import write_prediction_images

    for path, name in tqdm(files, desc="predict", unit="img", dynamic_ncols=True):
        image = read_rgb(path)
        pred = predictor(transform(image), image.shape[:2])[0].to(torch.uint8).cpu().numpy()
        write_prediction_images(out / name.with_suffix(""), image, pred, palette, label_ids)
    return len(files)
