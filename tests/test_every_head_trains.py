"""Every head and every backbone attention option trains a few steps through the real train() of train.py."""
import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from segattn.cli.config import CONFIG_DIR
from segattn.cli.train import train


def compose_run(data_root, run_dir, *overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True, overrides=[
            f"data.root={data_root}", f"hydra.run.dir={run_dir}", "hydra.job.num=0",
            "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            "data.train_transform.crop_size=[32,32]", "data.batch_size=2", "data.val_batch_size=1",
            "head.channels=32", "model.aux_channels=8", *overrides,
        ])
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.mark.parametrize("overrides", [
    ["head=fcn"], ["head=ccnet"], ["head=danet"], ["head=nonlocal"],
    ["head=nonlocal", "head.mode=concatenation", "head.sub_sample=true"],
    ["head=fcn", "backbone.attention=se"], ["head=fcn", "backbone.attention=cbam"],
], ids=lambda o: ",".join(o))
def test_head_trains_and_validates(tiny_cityscapes, tmp_path, overrides):
    cfg = compose_run(tiny_cityscapes, tmp_path / "run", *overrides)
    metrics = train(cfg)
    assert metrics["step"] == 2 and 0.0 <= metrics["mIoU"] <= 100.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 2
