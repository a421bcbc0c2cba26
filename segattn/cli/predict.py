"""``segattn-predict ckpt=<file> images=<file | folder | glob> [out=...]``: colour masks, overlays and
class-id PNGs for every image, through the checkpoint's test pipeline (see ``conf/predict.yaml``); the work
is :mod:`segattn.inference.files`."""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from segattn.cli.config import CONFIG_DIR
from segattn.cli.errors import one_line_errors


def predict(cfg: DictConfig) -> int:
    """Predict every image ``cfg.images`` names with the checkpoint's test pipeline; returns the image count."""
    from segattn.api import load_model
    from segattn.evaluation.writers import palette_or_fixed
    from segattn.inference.files import find_images, predict_files
    from segattn.inference.pipeline import check_passes, fill_passes, input_transform, predictor_passes
    from segattn.inference.predictor import Predictor
    from segattn.utils.device import resolve_device

    check_passes(cfg)
    files = find_images([str(i) for i in cfg.images] if OmegaConf.is_list(cfg.images) else str(cfg.images))
    model = load_model(str(cfg.ckpt))
    pipeline = model.test_pipeline
    settings = {**cfg, **fill_passes(cfg, pipeline["eval"])}
    check_passes(settings)
    out = Path(cfg.out).expanduser()
    predictor = Predictor(model, resolve_device(cfg.device), **predictor_passes(settings))
    count = predict_files(predictor, files, out, palette_or_fixed(model.palette, model.num_classes),
                          input_transform(pipeline["val_transform"]))
    resize = {k: v for k, v in pipeline["val_transform"].items() if k.startswith("resize") and v} or "none"
    print(f"{count} images predicted ({settings['mode']}, resize {resize}, as the checkpoint's test pipeline unless "
          f"given): colour masks, overlays and class-id PNGs written to {out}")
    return count


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
@one_line_errors("segattn-predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
