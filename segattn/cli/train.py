"""Training entry point: ``python train.py [overrides]`` or ``segattn-train [overrides]``."""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from segattn.cli.config import CONFIG_DIR


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``None``, a ``.ckpt`` file, a run folder (its ``checkpoints/last.ckpt``) or ``"last"`` (this run's)."""
    if ckpt_path is None:
        return None
    path = run_dir if ckpt_path == "last" else Path(ckpt_path).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path!r}: expected a .ckpt file, a run folder holding checkpoints/last.ckpt, "
            f"or 'last' with hydra.run.dir set to the run to continue; nothing found at {path}"
        )
    return str(path)


def train(cfg: DictConfig) -> dict:
    """Build data, model and trainer from ``cfg``, fit, and return the last validation metrics."""
    import pytorch_lightning as pl
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    from segattn.engine.checkpoint_io import AtomicCheckpointIO
    from segattn.engine.metrics_file import MetricsFile
    from segattn.engine.module import SegmentationModule
    from segattn.evaluation.metrics import format_table
    from segattn.models.build import build_segmentor

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = build_segmentor(cfg, datamodule.num_classes)
    module = SegmentationModule(
        model, instantiate(cfg.loss), datamodule.class_names, cfg.optim, cfg.trainer.max_steps,
        run_config=OmegaConf.to_container(cfg, resolve=True),
    )
    ckpt_dir = run_dir / "checkpoints"
    callbacks = [
        ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val/mIoU", mode="max", save_top_k=1,
                        auto_insert_metric_name=False, enable_version_counter=False),
        ModelCheckpoint(dirpath=ckpt_dir, save_top_k=0, save_last=True,
                        every_n_train_steps=cfg.checkpoint.every_n_steps),
        LearningRateMonitor(logging_interval="step"),
        MetricsFile(run_dir / "metrics.json"),
    ]
    loggers = [CSVLogger(run_dir, name="logs", version=""), TensorBoardLogger(run_dir, name="tb", version="")]
    trainer = pl.Trainer(**cfg.trainer, callbacks=callbacks, logger=loggers, default_root_dir=run_dir,
                         plugins=[AtomicCheckpointIO()])
    trainer.fit(module, datamodule=datamodule, ckpt_path=resolve_checkpoint(cfg.ckpt_path, run_dir))
    if module.val_metrics is None or module.val_metrics["step"] != trainer.global_step:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    if trainer.is_global_zero:
        print(format_table(module.val_metrics))
        print(f"\nRun folder: {run_dir}")
    return module.val_metrics


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
