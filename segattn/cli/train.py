"""Training entry point: ``python train.py [overrides]`` or ``segattn-train [overrides]``."""
from __future__ import annotations

import signal
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from segattn.cli.config import CONFIG_DIR


def resume_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """``None``, a ``.ckpt`` file, a run folder (its ``checkpoints/last.ckpt``) or ``"last"`` (this run's).

    A SLURM job requeued after SIGTERM continues from the checkpoint it saved then (Lightning's
    ``hpc_ckpt_<n>.ckpt`` in the run folder), whatever ``ckpt_path`` says.
    """
    from lightning_fabric.plugins.environments import SLURMEnvironment

    from segattn.checkpoints import LAST, read_segattn_checkpoint, resolve_checkpoint

    if SLURMEnvironment.detect() and any(run_dir.glob("hpc_ckpt_*.ckpt")):
        return "hpc"
    if ckpt_path is None:
        return None
    if ckpt_path == "last" and not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise FileNotFoundError(f"ckpt_path=last: no checkpoints/last.ckpt in {run_dir}; set hydra.run.dir to the run "
                                f"to continue")
    path = resolve_checkpoint(run_dir if ckpt_path == "last" else ckpt_path, prefer=LAST, key="ckpt_path")
    read_segattn_checkpoint(path)  # refused here, with one message, before Lightning reads it
    return str(path)


def train(cfg: DictConfig) -> dict:
    """Build data, model and trainer from ``cfg``, fit, and return the last validation metrics.

    Under DDP every process runs this function; what follows ``fit`` (and the final validation,
    which all processes share) runs on rank 0 only.
    """
    import pytorch_lightning as pl
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from pytorch_lightning.utilities.rank_zero import rank_zero_info

    import torch

    from segattn.engine.components import instantiate_group, instantiate_one
    from segattn.engine.launch import trainer_kwargs, training_precision
    from segattn.engine.module import SegmentationModule
    from segattn.engine.recipe_notice import recipe_notice
    from segattn.evaluation.metrics import format_table
    from segattn.models.build import build_segmentor
    from segattn.utils.precision import use_channels_last

    notice = recipe_notice(cfg, HydraConfig.get().runtime.choices.get("experiment"))  # before train() edits cfg
    if notice:
        rank_zero_info(notice)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    cfg.run_dir = str(run_dir)  # where the loggers and callbacks of conf/logger, conf/callbacks write
    asked, cfg.trainer.precision = cfg.trainer.precision, training_precision(cfg.trainer)  # checkpoints store it resolved
    rank_zero_info(f"precision: {cfg.trainer.precision}" + (" (auto: the fastest on this device)" if asked == "auto" else ""))
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.data.get("root"):  # stored absolute: evaluate.py from another folder finds the same data
        cfg.data.root = str(Path(cfg.data.root).expanduser().resolve())
    datamodule = instantiate(cfg.data)
    if cfg.model.get("init_from") and cfg.backbone.get("pretrained"):
        cfg.backbone.pretrained = None  # every backbone tensor comes from init_from: no ImageNet download
    model = build_segmentor(cfg, datamodule.num_classes)
    if cfg.model.get("init_from"):
        from segattn.engine.init_from import init_from

        print(init_from(model, cfg.model.init_from, bool(cfg.model.get("init_from_other_normalization"))))
    if use_channels_last(cfg.model.get("channels_last", "auto"), cfg.trainer.precision):
        model = model.to(memory_format=torch.channels_last)  # the first conv's output, and all after it, follow
    if cfg.model.get("compile"):  # in place: parameter names (and checkpoints) stay those of the plain model
        model.compile(**({} if cfg.model.compile is True else {"backend": cfg.model.compile}))
    module = SegmentationModule(
        model, instantiate_one(cfg.loss, "loss"), datamodule.class_names, cfg.optim, cfg.trainer.max_steps,
        run_config=OmegaConf.to_container(cfg, resolve=True),
        output_criteria={name: instantiate_one(loss, f"loss_per_output.{name}")
                         for name, loss in (cfg.get("loss_per_output") or {}).items() if loss},
        val_inference=cfg.get("eval"),  # validation follows the recipe's test pipeline (slide for the 769 recipes)
    )
    ckpt_dir = run_dir / "checkpoints"
    callbacks = instantiate_group(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_group(cfg.get("logger"), "logger") or False
    trainer = pl.Trainer(**trainer_kwargs(cfg.trainer), callbacks=callbacks, logger=loggers, default_root_dir=run_dir)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg.ckpt_path, run_dir),
                    weights_only=True)  # a resumed file runs no code either
    except SIGTERMException:  # every process stopped at the same step; a late SIGTERM must not kill the exit
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # (Python resets its own handlers to the default at exit)
        raise
    trainer.save_checkpoint(ckpt_dir / "last.ckpt", weights_only=False)  # the final, full state (resumable)
    if module.val_metrics is None or module.val_metrics["step"] != trainer.global_step:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    if not trainer.is_global_zero:  # other DDP processes stop here: everything below is rank 0's
        return module.val_metrics
    print(format_table(module.val_metrics))
    print(f"\nRun folder: {run_dir}")
    return module.val_metrics


RUN_START_FILES = {".hydra", "train.log"}  # what Hydra writes before train() runs


def remove_unstarted_run() -> None:
    """Remove the run folder of a run that stopped before writing anything of its own (a start-up error)."""
    import shutil

    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if run_dir.is_dir() and {p.name for p in run_dir.iterdir()} <= RUN_START_FILES:
        shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    from omegaconf.errors import MissingMandatoryValue
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    from segattn.checkpoints import CheckpointError
    from segattn.cli.errors import program_name
    from segattn.data.errors import DatasetError
    from segattn.engine.components import ComponentError
    from segattn.engine.init_from import InitFromError
    from segattn.engine.guards import NonFiniteLossError

    name = program_name("segattn-train")  # as the user ran it: train.py or segattn-train
    try:
        train(cfg)
    except MissingMandatoryValue as err:
        remove_unstarted_run()
        hint = (" (the folder you unpacked the dataset into; data/README.md shows the layout each dataset expects)"
                if err.full_key == "data.root" else " (see the comment beside it in conf/)")
        raise SystemExit(f"{name}: error: {err.full_key} is required: pass {err.full_key}=<value>{hint}") from None
    except (CheckpointError, ComponentError, DatasetError, FileNotFoundError, InitFromError) as err:
        remove_unstarted_run()
        raise SystemExit(f"{name}: error: {err}") from None
    except NonFiniteLossError as err:  # raised on every process: one message, from rank 0
        raise SystemExit(f"{name}: error: {err}" if rank_zero_only.rank == 0 else 1) from None


if __name__ == "__main__":
    main()
