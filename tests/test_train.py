"""The real entry point (`python train.py`) end to end on tiny data: checkpoints, metrics.json, resume."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segattn.utils.precision import fastest_precision
from segattn.checkpoints import read_file

ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(data_root: Path, run_dir: Path, steps: int) -> list[str]:
    return [
        f"data.root={data_root}", f"hydra.run.dir={run_dir}", f"trainer.max_steps={steps}",
        "trainer.val_check_interval=2", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "data.train_transform.crop_size=[32,32]", "data.batch_size=2", "data.val_batch_size=1",
        "checkpoint.every_n_steps=2", "head.channels=16", "model.aux_channels=8",
    ]


def run_train(*overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_two_steps_write_checkpoints_metrics_and_resume(tiny_cityscapes, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train("head=fcn", *tiny_overrides(tiny_cityscapes, run_dir, steps=2))
    assert f"Run folder: {run_dir}" in proc.stdout and "| mIoU |" in proc.stdout
    assert "weights_only" not in proc.stdout + proc.stderr  # the final save says what it saves
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"mIoU", "aAcc", "mAcc", "per_class"} and "road" in metrics["per_class"]
    assert 0.0 <= metrics["mIoU"] <= 100.0
    for name in ("last.ckpt", "best.ckpt"):
        ckpt = read_file(run_dir / "checkpoints" / name)
        assert ckpt["global_step"] == 2
        assert ckpt["config"]["head"]["_target_"].endswith("FCNHead")
        assert ckpt["config"]["trainer"]["precision"] == fastest_precision("cpu")  # auto, stored resolved
    assert f"precision: {fastest_precision('cpu')} (auto" in proc.stdout + proc.stderr
    assert (run_dir / "logs" / "metrics.csv").is_file() and any((run_dir / "tb").iterdir())

    resumed = tmp_path / "resumed"
    proc = run_train("head=fcn", *tiny_overrides(tiny_cityscapes, resumed, steps=4), f"ckpt_path={run_dir}",
                     "trainer.log_every_n_steps=1")
    assert "weights_only" not in proc.stdout + proc.stderr  # read with weights_only=True: no "defaulting to False"
    ckpt = read_file(resumed / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 4
    lrs = ckpt["lr_schedulers"][0]
    assert lrs["last_epoch"] == 4  # the poly schedule continued from step 2, not from 0
    # the first run had finished its 2-step schedule (LR 0): the resumed one follows the 4-step schedule
    with open(resumed / "logs" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("lr-SGD/backbone")]
    lrs = [float(row["lr-SGD/backbone"]) for row in rows]  # the LR of steps 2 and 3
    assert lrs == pytest.approx([0.01 * (1 - 2 / 4) ** 0.9, 0.01 * (1 - 3 / 4) ** 0.9])


def test_bad_names_and_missing_checkpoint_are_clear(tiny_cityscapes, tmp_path):
    env = {**os.environ}
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "head=ccnett"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "ccnet" in proc.stderr and "fcn" in proc.stderr
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *tiny_overrides(tiny_cityscapes, tmp_path / "r", 2),
         f"ckpt_path={tmp_path / 'nope.ckpt'}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "expected a .ckpt file" in proc.stderr
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "data=cityscapes", f"hydra.run.dir={tmp_path / 'c'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "data.root is required" in proc.stderr and "data/README.md" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "c").exists()  # a run that never started leaves no folder behind


@pytest.mark.parametrize("overrides, expected", [
    ([], {"model.aux_weight": 0.4, "checkpoint.every_n_steps": 125}),  # synthetic quick start
    (["data=context"], {"checkpoint.every_n_steps": 600, "optim.head_lr_mult": 10}),
    (["experiment=ccnet_r101_cityscapes", "data.root=/x"], {"model.aux_channels": 512, "backbone.depth": 101}),
])
def test_data_and_experiment_configs_override_the_train_defaults(overrides, expected):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from segattn.cli.config import CONFIG_DIR

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    assert {key: OmegaConf.select(cfg, key) for key in expected} == expected


def test_compiled_model_trains_and_saves_plain_parameter_names(tiny_cityscapes, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train("head=ccnet", "model.compile=eager", *tiny_overrides(tiny_cityscapes, run_dir, steps=2))
    assert "| mIoU |" in proc.stdout
    ckpt = read_file(run_dir / "checkpoints" / "last.ckpt")
    names = list(ckpt["state_dict"])
    assert "model.head.cca.gamma" in names and not any("_orig_mod" in n for n in names)
