"""``segattn-export ckpt=<file> format=onnx|torchscript out=<file>``: the checkpoint's model as a file that
takes any input size (see ``conf/export.yaml``); the work is :func:`segattn.export.export_model`."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from segattn.cli.config import CONFIG_DIR
from segattn.cli.errors import one_line_errors


def export(cfg: DictConfig):
    """Write ``cfg.out``; returns its path."""
    from segattn.api import load_model
    from segattn.export import export_model

    if len(cfg.size) != 2:
        raise ValueError(f"size must be [h, w], e.g. [512,512]; got {list(cfg.size)}")
    path = export_model(load_model(str(cfg.ckpt)), str(cfg.out), str(cfg.format), int(cfg.opset), tuple(cfg.size))
    print(f"{cfg.format} model written to {path} (any batch, height and width)")
    return path


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
@one_line_errors("segattn-export")
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
