"""Loggers and callbacks from their config groups: the defaults are today's set, a list or null changes it."""
from pathlib import Path

import pytest
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from segattn.callbacks.attention_diagnostics import AttentionDiagnostics
from segattn.callbacks.metrics_file import MetricsFile
from segattn.callbacks.slurm_requeue import RequeueOnSigterm
from segattn.callbacks.step_seeds import StepSeeds
from segattn.callbacks.visual import TrainingCurves, ValidationImages
from segattn.cli.config import compose_train
from segattn.engine.components import ComponentError, instantiate_group
from segattn.loggers.csv import RunCSVLogger


def test_defaults_are_the_callbacks_and_loggers_train_py_had_plus_the_diagnostics(tmp_path):
    cfg = compose_train([f"run_dir={tmp_path}"])
    callbacks = instantiate_group(cfg.callbacks, "callbacks")
    assert [type(c) for c in callbacks] == [ModelCheckpoint, ModelCheckpoint, LearningRateMonitor, MetricsFile, StepSeeds,
                                            RequeueOnSigterm, ValidationImages, TrainingCurves, AttentionDiagnostics]
    best, last = callbacks[:2]
    assert (best.dirpath, best.monitor, best.filename) == (str(tmp_path / "checkpoints"), "val/mIoU", "best")
    assert last.save_last and last._every_n_train_steps == cfg.checkpoint.every_n_steps
    assert callbacks[6].num_images == 4 and callbacks[3].path == tmp_path / "metrics.json"
    loggers = instantiate_group(cfg.logger, "logger")
    assert [type(lg) for lg in loggers] == [RunCSVLogger, TensorBoardLogger]
    assert Path(loggers[0].log_dir) == tmp_path / "logs" and Path(loggers[1].log_dir) == tmp_path / "tb"


def test_an_earlier_csv_in_the_run_folder_is_kept(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "metrics.csv").write_text("step,train/loss\n1,2.0\n")
    RunCSVLogger(tmp_path, name="logs", version="")
    assert (tmp_path / "logs" / "metrics_1.csv").read_text().startswith("step,train/loss")


def test_lists_and_nulls_change_the_set_and_bad_entries_are_named(tmp_path):
    cfg = compose_train([f"run_dir={tmp_path}", "callbacks=[default,early_stopping]", "callbacks.validation_images=null",
                         "logger=[csv]"])
    kinds = [type(c) for c in instantiate_group(cfg.callbacks, "callbacks")]
    assert EarlyStopping in kinds and ValidationImages not in kinds
    assert [type(lg) for lg in instantiate_group(cfg.logger, "logger")] == [RunCSVLogger]
    with pytest.raises(ComponentError, match="callbacks.odd: expected a config with _target_, found keys \\['patience'\\]"):
        instantiate_group({"odd": {"patience": 3}}, "callbacks")
