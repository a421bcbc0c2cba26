"""``segattn-predict ckpt=<file> images=<file | folder | glob> [out=...]``: colour masks, overlays and
class-id PNGs for every image (see ``conf/predict.yaml``); the work is :mod:`segattn.inference.files`."""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from segattn.cli.config import CONFIG_DIR
from segattn.cli.errors import one_line_errors


def predict(cfg: DictConfig) -> int:
    """Predict every image ``cfg.images`` names with the checkpoint's test pipeline; returns the image count."""
    from segattn.api import model_from_checkpoint, read_any_checkpoint
    from segattn.evaluation.settings import apply_recipe, check_settings, passes
    from segattn.evaluation.writers import palette_or_fixed
    from segattn.inference.files import find_images, predict_files
    from segattn.inference.predictor import Predictor
    from segattn.models.checkpoint import resolve_checkpoint
    from segattn.utils.device import resolve_device

    check_settings(cfg, prefix="")
    files = find_images(str(cfg.images))
    path = resolve_checkpoint(str(cfg.ckpt))
    ckpt = read_any_checkpoint(path)
    apply_recipe(cfg, ckpt["config"].get("eval"))
    check_settings(cfg, prefix="")
    model = model_from_checkpoint(ckpt, path)
    out = Path(cfg.out).expanduser()
    predictor = Predictor(model, resolve_device(cfg.device), **passes(cfg))
    count = predict_files(predictor, files, out, palette_or_fixed(model.palette, model.num_classes))
    print(f"{count} images: colour masks, overlays and class-id PNGs written to {out}")
    return count


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
@one_line_errors("segattn-predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
