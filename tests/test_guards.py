"""Numeric guards: no NaN from unlabelled batches, non-finite losses stop the run, slide gaps refused,
a larger max_steps on resume extends the poly schedule."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segattn.engine.guards import NonFiniteLossError, check_finite_loss
from segattn.losses import CrossEntropy, OhemCrossEntropy
from segattn.engine.schedule import poly_schedule
from segattn.checkpoints import read_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("criterion", [CrossEntropy(), OhemCrossEntropy(min_kept=4)])
def test_a_batch_without_labelled_pixels_gives_zero_loss_and_zero_gradient(criterion):
    logits = torch.randn(2, 4, 5, 6, requires_grad=True)
    loss = criterion(logits, torch.full((2, 5, 6), 255))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_cross_entropy_is_the_mean_over_labelled_pixels():
    logits, target = torch.randn(2, 4, 5, 6), torch.randint(0, 4, (2, 5, 6))
    target[0, 0] = 255
    expected = torch.nn.functional.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(CrossEntropy()(logits, target), expected)


def test_check_finite_loss_names_the_step():
    check_finite_loss(torch.tensor(1.5), step=3)
    with pytest.raises(NonFiniteLossError, match=r"training loss is nan at step 7: expected a finite loss"):
        check_finite_loss(torch.tensor(float("nan")), step=7)
    with pytest.raises(NonFiniteLossError, match="inf at step 2"):
        check_finite_loss(torch.tensor(float("inf")), step=2)


def test_a_resumed_schedule_follows_the_new_max_steps():
    def scheduler(max_steps):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
        return poly_schedule(optimizer, max_steps, power=0.9, warmup_steps=2)

    finished = scheduler(10)
    for _ in range(10):
        finished.optimizer.step()
        finished.step()
    assert finished.get_last_lr() == [0.0]
    longer = scheduler(20)
    longer.load_state_dict(finished.state_dict())
    longer.optimizer.step()
    longer.step()
    assert longer.get_last_lr()[0] == pytest.approx(0.01 * (1 - 9 / 18) ** 0.9)


@pytest.mark.parametrize("processes", [1, 2])
def test_a_non_finite_loss_stops_the_run_with_one_message_and_keeps_the_last_good_checkpoint(processes,
                                                                                              tiny_cityscapes, tmp_path):
    """With 2 DDP processes only rank 1's loss turns NaN: both stop at that step (no hang), one message."""
    run_dir = tmp_path / "run"
    overrides = [
        f"data.root={tiny_cityscapes}", f"hydra.run.dir={run_dir}", "trainer.max_steps=8", "trainer.accelerator=cpu",
        f"trainer.devices={processes}", "trainer.val_check_interval=2", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false", "data.train_transform.crop_size=[32,32]",
        f"data.batch_size={2 // processes}", "data.val_batch_size=1", "checkpoint.every_n_steps=2", "head=fcn",
        "head.channels=16", "model.aux_channels=8", "~loss", "+loss._target_=tests.helpers.nan_loss.NaNAfter",
        "+loss.calls=6", f"+loss.rank={1 if processes == 2 else 'null'}",  # 2 outputs per step: NaN from step 3
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("train.py: error:")]
    expected = "training loss is not finite at step 3 on 1 of 2 processes" if processes == 2 else \
        "training loss is nan at step 3: expected a finite loss"
    assert len(errors) == 1 and expected in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = read_file(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 2
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values() if t.is_floating_point())
