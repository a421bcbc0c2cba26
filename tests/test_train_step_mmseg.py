"""The mmseg recipes train as mmsegmentation 1.2.2 does, step for step (float64).

fixtures/mmseg-train-step/ (copied from ../shared/fixtures; its README says what mmseg did) holds, per
tiny model, the initial zoo weights, three batches, mmseg's step-0 loss and gradients and the weights
after three SGD steps. Here the loss and the optimiser come from the project's own recipe config (composed
as train.py does), the steps run through SegmentationModule under a Lightning Trainer in float64.
"""
import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from segattn.cli.config import compose_train
from segattn.convert import convert_checkpoint
from segattn.engine.components import instantiate_one
from segattn.engine.module import SegmentationModule
from segattn.models.checkpoint import build_model

FIXTURES = Path(__file__).parent / "fixtures" / "mmseg-train-step"
STEMS = sorted(p.name[: -len(".json")] for p in FIXTURES.glob("*.json"))
RECIPES = {  # fixture head -> the recipe that trains it (FCN: an ADE20K recipe with head=fcn)
    "ccnet": ["experiment=ccnet_r101_cityscapes_mmseg"],
    "danet": ["experiment=danet_r101_cityscapes"],
    "nonlocal": ["experiment=nonlocal_r101_cityscapes"],
    "fcn": ["experiment=ccnet_r101_ade20k", "head=fcn"],
}
TOLERANCE = 1e-6


def _rel_error(ours: torch.Tensor, theirs: torch.Tensor, floor: float = 0.0) -> float:
    """max |ours - theirs| / max(max |theirs|, floor)."""
    ours, theirs = ours.double(), theirs.double()
    scale = max(theirs.abs().max().item(), floor)
    return (ours - theirs).abs().max().item() / scale if scale > 0 else (ours - theirs).abs().max().item()


class _Record(pl.Callback):
    """The loss of every step and the gradients of step 0."""

    def __init__(self):
        self.losses, self.grads = [], None

    def on_before_optimizer_step(self, trainer, module, optimizer):
        if trainer.global_step == 0:
            self.grads = {name: p.grad.detach().clone() for name, p in module.model.named_parameters()}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(outputs["loss"].detach().clone())


def _module(stem: str, info: dict, overrides: tuple = ()) -> SegmentationModule:
    """The converted initial weights in a SegmentationModule whose loss and optimiser are the recipe's."""
    ckpt, _ = convert_checkpoint(FIXTURES / f"{stem}.pth")
    model = build_model(ckpt, stem).train()
    for layer in model.modules():  # mmseg's run set the head dropout to 0 (a deterministic step)
        if isinstance(layer, nn.modules.dropout._DropoutNd):
            layer.p = 0.0
    cfg = compose_train([*RECIPES[info["head"]], "data.root=/unused", f"trainer.max_steps={info['total_steps']}",
                        *overrides])
    criteria = {name: instantiate_one(loss, name) for name, loss in (cfg.get("loss_per_output") or {}).items() if loss}
    return SegmentationModule(model, instantiate_one(cfg.loss, "loss"), ckpt["class_names"], cfg.optim,
                              cfg.trainer.max_steps, output_criteria=criteria)


def _train(module: SegmentationModule, batches: list) -> _Record:
    record = _Record()
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision="64-true", max_steps=len(batches), logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0, callbacks=[record])
    data = [{"image": image, "mask": mask} for image, mask in batches]
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    assert trainer.global_step == len(batches)
    return record


@pytest.mark.parametrize("stem", [  # the Non-local model (6 s) runs by default, the others (20 s each) with -m slow
    pytest.param(stem, marks=() if stem.startswith("nonlocal") else pytest.mark.slow) for stem in STEMS
], ids=lambda s: s.split("_")[0])
def test_recipe_trains_as_mmseg_step_for_step(stem):
    info = json.loads((FIXTURES / f"{stem}.json").read_text())
    batches = torch.load(FIXTURES / f"{stem}.batches.pt")
    module = _module(stem, info)
    lrs = []
    module.on_train_batch_start = lambda batch, idx: lrs.append(module.optimizers().param_groups[0]["lr"])
    record = _train(module, batches)

    assert lrs == pytest.approx(info["lrs"], rel=1e-12, abs=0)  # mmengine's PolyLR, eta_min at end - 1
    expected_loss = torch.load(FIXTURES / f"{stem}.loss.pt")["total"]
    assert _rel_error(record.losses[0], expected_loss) < TOLERANCE
    assert torch.stack(record.losses).tolist() == pytest.approx(info["step_losses"], rel=TOLERANCE)

    grads, _ = convert_checkpoint(FIXTURES / f"{stem}.grad.pth")
    expected = {k.removeprefix("model."): v for k, v in grads["state_dict"].items()}
    floor = TOLERANCE * max(g.abs().max().item() for g in record.grads.values())  # symmetric zeros are noise
    errors = {name: _rel_error(grad, expected[name], floor) for name, grad in record.grads.items()}
    assert max(errors.values()) < TOLERANCE, sorted(errors.items(), key=lambda item: -item[1])[:3]

    after, _ = convert_checkpoint(FIXTURES / f"{stem}.after.pth")
    state = module.model.state_dict()
    assert set(state) == {k.removeprefix("model.") for k in after["state_dict"]}
    errors = {name: _rel_error(state[name], value) for name, value in
              ((k.removeprefix("model."), v) for k, v in after["state_dict"].items())}
    assert max(errors.values()) < TOLERANCE, sorted(errors.items(), key=lambda item: -item[1])[:3]


@pytest.mark.parametrize("average, matches", [(None, True), ("non_ignore", False)])
def test_step_zero_loss_needs_mmsegs_loss_scale(average, matches):
    """The recipe's loss divides by all pixels; the mean over labelled pixels (a quarter are 255) is 1.3x mmseg's."""
    stem = next(s for s in STEMS if s.startswith("ccnet"))
    info = json.loads((FIXTURES / f"{stem}.json").read_text())
    module = _module(stem, info, () if average is None else (f"loss.average={average}",)).double()
    image, mask = torch.load(FIXTURES / f"{stem}.batches.pt")[0]
    with torch.no_grad():
        loss = module.training_step({"image": image, "mask": mask}, 0)
    assert loss.dtype == torch.float64  # float64 logits are not cast to float32 for the loss
    error = _rel_error(loss, torch.load(FIXTURES / f"{stem}.loss.pt")["total"])
    assert error < TOLERANCE if matches else error > 0.1
