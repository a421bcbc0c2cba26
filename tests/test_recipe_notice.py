"""A run that changes a setting of its published recipe trains, and says so in one line."""
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from segattn.configs import CONFIG_DIR
from segattn.engine.recipe_notice import recipe_notice

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ["data.root=/data", "trainer.devices=2", "data.num_workers=1", "backbone.pretrained=/weights/r101.pth"]


def _notice(experiment, *overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*([f"experiment={experiment}"] if experiment else []), *overrides])
        return recipe_notice(cfg, experiment)


@pytest.mark.parametrize("experiment, overrides, expected", [
    ("ccnet_r101_cityscapes_mmseg", ["loss.average=non_ignore"], "loss.average=non_ignore (recipe: all)"),
    ("danet_r101_ade20k", ["optim.poly_end=max_steps", "trainer.max_steps=1000"],
     "optim.poly_end=max_steps (recipe: last_step), trainer.max_steps=1000 (recipe: 160000)"),
    ("nonlocal_r101_cityscapes", ["loss=ohem"],
     "experiment=nonlocal_r101_cityscapes: loss._target_=segattn.losses.OhemCrossEntropy (recipe: segattn.losses.CrossEntropy)"),
    ("ccnet_r101_cityscapes", ["data.train_transform.crop_size=[512,1024]"],
     "data.train_transform.crop_size=[512,1024] (recipe: [769,769])"),
])
def test_an_override_against_the_recipe_is_named(experiment, overrides, expected):
    notice = _notice(experiment, *LOCAL, *overrides)
    assert notice.startswith(f"note: this run differs from the published recipe experiment={experiment}: ")
    assert notice.endswith(expected) and "\n" not in notice


def test_local_settings_and_runs_without_a_recipe_give_no_notice():
    assert _notice("ccnet_r101_cityscapes_mmseg", *LOCAL) is None
    assert _notice("ccnet_r101_cityscapes", *LOCAL, "loss.average=non_ignore") is None  # the official recipe's own
    assert _notice(None, "loss.average=all") is None


def test_train_prints_the_notice_once_before_training(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "experiment=ccnet_r101_cityscapes_mmseg",
                           "loss.average=non_ignore", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert out.count("differs from the published recipe") == 1 and "loss.average=non_ignore (recipe: all)" in out
    assert "data.root is required" in out  # stopped where the run needs its data, after the notice
