"""A checkpoint like train.py's (config, class names, ``model.`` weights) of a thin random model."""
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from segattn.cli.config import CONFIG_DIR
from segattn.data.cityscapes import CityscapesDataset
from segattn.models.build import build_segmentor


def random_checkpoint(tmp_path: Path, head: str, run: str = "run") -> Path:
    """``<tmp_path>/<run>/checkpoints/last.ckpt`` of a random ``head`` (16 channels, no aux, output stride 8)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"head={head}", "head.channels=16", "model.aux_weight=0",
                                          "backbone.output_stride=8"])
    config = OmegaConf.to_container(cfg, resolve=True)
    model = build_segmentor(config, len(CityscapesDataset.CLASSES))
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    path = tmp_path / run / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": state, "config": config, "class_names": list(CityscapesDataset.CLASSES)}, path)
    return path
