"""LightningModule: loss over every supervised output, SGD + poly LR, validation mIoU from a confusion matrix."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassConfusionMatrix

from segattn.constants import IGNORE_INDEX
from segattn.engine.components import ComponentError
from segattn.engine.guards import check_finite_loss
from segattn.engine.schedule import poly_schedule
from segattn.evaluation.metrics import metrics_from_confusion
from segattn.inference.passes import slide_logits
from segattn.inference.pipeline import InferenceSettingError, check_passes, fill_passes


class SegmentationModule(pl.LightningModule):
    """Trains a :class:`~segattn.models.segmentor.Segmentor` on ``{"image", "mask"}`` batches.

    ``optim`` holds ``lr``, ``momentum``, ``weight_decay``, ``power``, ``warmup_steps``, ``min_lr``,
    ``poly_end`` (:data:`~segattn.engine.schedule.POLY_ENDS`) and ``head_lr_mult`` (learning-rate multiplier
    of the head and auxiliary head). ``run_config`` (the resolved training config) is stored in every checkpoint under ``"config"``. ``output_criteria``
    maps an output of the model (``out``, ``aux``, DANet's ``pam``/``cam``) to its own loss; the others
    use ``criterion`` (official CCNet: OHEM on ``out``, plain CE on ``aux``). ``val_inference`` is the
    recipe's test pipeline for validation (the ``eval`` config: ``mode`` whole | slide, ``crop_size``,
    ``stride``), so that ``best.ckpt`` is chosen by the metric the recipe reports; default whole image.
    """

    def __init__(self, model: nn.Module, criterion: nn.Module, class_names: Sequence[str], optim: dict,
                 max_steps: int, run_config: Optional[dict] = None,
                 output_criteria: Optional[Mapping[str, nn.Module]] = None,
                 val_inference: Optional[Mapping[str, Any]] = None):
        super().__init__()
        self.model, self.criterion = model, criterion
        outputs = getattr(model, "loss_weights", None)  # {output name: weight} of a Segmentor
        unknown = sorted(set(output_criteria or {}) - set(outputs)) if outputs is not None else []
        if unknown:
            raise ComponentError(f"loss_per_output: no output named {unknown} in this model; its outputs are {sorted(outputs)}")
        self.output_criteria = nn.ModuleDict(dict(output_criteria or {}))
        self.class_names = list(class_names)
        self.optim, self.max_steps, self.run_config = dict(optim), max_steps, run_config
        self.val_confusion = MulticlassConfusionMatrix(len(self.class_names), ignore_index=IGNORE_INDEX)
        self.val_metrics: Optional[dict] = None
        self.val_inference = validation_inference(val_inference)

    def forward(self, image: Tensor) -> Tensor:
        return self.model(image)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        outputs = self.model.forward_train(batch["image"])
        losses = {name: self._criterion(name)(_loss_precision(logits), batch["mask"]) for name, logits in outputs.items()}
        loss = sum(weight * losses[name] for name, weight in self.model.loss_weights.items())
        check_finite_loss(loss, self.global_step, self.trainer.strategy if self._trainer is not None else None)
        self.log("train/loss", loss, prog_bar=True)
        if len(losses) > 1:
            self.log_dict({f"train/loss_{name}": value for name, value in losses.items()})
        return loss

    def _criterion(self, output: str) -> nn.Module:
        return self.output_criteria[output] if output in self.output_criteria else self.criterion

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        image, settings = batch["image"], self.val_inference
        if settings["mode"] == "slide":
            logits = slide_logits(self.model, image, settings["crop_size"], settings["stride"], len(self.class_names))
        else:
            logits = self.model(image)
        mask = batch["mask"]
        if logits.shape[-2:] != mask.shape[-2:]:  # image resized for inference: compare at label size
            logits = F.interpolate(logits, size=mask.shape[-2:], mode="bilinear",
                                   align_corners=getattr(self.model, "align_corners", False))
        self.val_confusion.update(logits.argmax(1), mask)

    def on_validation_epoch_end(self) -> None:
        confusion = self.val_confusion.compute()  # summed over processes
        self.val_confusion.reset()
        metrics = metrics_from_confusion(confusion, self.class_names)
        self.log_dict({f"val/{key}": metrics[key] for key in ("mIoU", "aAcc", "mAcc")}, prog_bar=True)
        if not self.trainer.sanity_checking:
            self.val_metrics = {**metrics, "step": self.global_step}

    def configure_optimizers(self) -> dict[str, Any]:
        head_params = [p for name, p in self.model.named_parameters() if not name.startswith("backbone.")]
        lr, mult = self.optim["lr"], self.optim.get("head_lr_mult", 1.0)
        optimizer = torch.optim.SGD(
            [{"params": self.model.backbone.parameters(), "lr": lr, "name": "backbone"},
             {"params": head_params, "lr": lr * mult, "name": "head"}],
            lr=lr, momentum=self.optim["momentum"], weight_decay=self.optim["weight_decay"],
        )
        scheduler = poly_schedule(optimizer, self.max_steps, self.optim["power"], self.optim.get("warmup_steps", 0),
                                  min_lr=self.optim.get("min_lr", 0.0), end=self.optim.get("poly_end", "max_steps"))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_train_start(self) -> None:
        """Set the LR of the restored step from this run's schedule (a resumed run may have a larger max_steps)."""
        for config in self.trainer.lr_scheduler_configs:
            scheduler = config.scheduler
            for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["config"] = self.run_config
        checkpoint["class_names"] = self.class_names


def _loss_precision(logits: Tensor) -> Tensor:
    """Half / bfloat16 logits (mixed precision) cast to float32 for the loss; float32 and float64 kept as they are."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def validation_inference(settings: Optional[Mapping[str, Any]]) -> dict:
    """``{"mode", "crop_size", "stride"}`` of the validation passes from an ``eval`` config, filled and checked as
    ``evaluate.py`` fills and checks them (None: whole image); :class:`ComponentError` naming a bad value."""
    passes = fill_passes({}, dict(settings or {}))
    try:
        check_passes({**passes, "scales": [1.0], "precision": "auto"}, prefix="eval.")
    except InferenceSettingError as err:
        raise ComponentError(str(err)) from None
    return passes
