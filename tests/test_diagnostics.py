"""Attention diagnostics: gates, criss-cross reach after R passes against dense matrices, distances and
entropies by hand, SE gates against torchvision's own scale, and the callback inside train.py."""
import math

import pytest
import torch
from torch import nn

from segattn.diagnostics.gates import gate_values, gated_blocks, never_engaged_message
from segattn.diagnostics.measure import measure_on_batch
from segattn.diagnostics.reach import block_reach, criss_cross_mass, query_grid
from segattn.models.attention import CrissCrossAttention, NonLocal2d, PositionAttention, SqueezeExcitation
from segattn.visualization.capture import AttentionRecord
from segattn.checkpoints import read_file


def _criss_cross_weights(h: int, w: int, seed: int) -> torch.Tensor:
    """Random ``1 x h x w x (h + w)`` criss-cross weights: softmax over the column (u itself excluded) and the row."""
    g = torch.Generator().manual_seed(seed)
    energy = torch.randn(1, h, w, h + w, generator=g)
    for i in range(h):
        energy[0, i, :, i] = -math.inf  # u is counted once, in the row part
    return energy.softmax(-1)


def _dense(weights: torch.Tensor) -> torch.Tensor:
    """The same map as a dense ``hw x hw`` matrix: row u = where u's output reads from."""
    _, h, w, _ = weights.shape
    dense = torch.zeros(h * w, h * w, dtype=torch.float64)
    for i in range(h):
        for j in range(w):
            for k in range(h):
                dense[i * w + j, k * w + j] += weights[0, i, j, k]
            for k in range(w):
                dense[i * w + j, i * w + k] += weights[0, i, j, h + k]
    return dense


def test_criss_cross_mass_after_two_passes_is_the_product_of_the_dense_maps():
    h, w = 3, 4
    first, second = _criss_cross_weights(h, w, 0), _criss_cross_weights(h, w, 1)
    records = [AttentionRecord("criss_cross", t, (h, w), (h, w)) for t in (first, second)]
    ys, xs = query_grid(h, w)
    mass = criss_cross_mass(records, ys, xs)[0].flatten(1)  # Q x hw
    reference = (_dense(second) @ _dense(first))[ys * w + xs]  # pass 2 reads the output of pass 1
    assert torch.allclose(mass, reference, atol=1e-12) and torch.allclose(mass.sum(-1), torch.ones(len(ys), dtype=torch.float64))

    stats = block_reach(records, image_size=(3 * 8, 4 * 8))  # stride 8 in both directions
    on_cross = torch.tensor([[(k // w == y) or (k % w == x) for k in range(h * w)] for y, x in zip(ys, xs)])
    assert stats["beyond_cross"] == pytest.approx(float(reference[~on_cross].sum() / len(ys)))
    assert stats["beyond_cross"] > 0.05
    assert block_reach(records[:1], (24, 32))["beyond_cross"] == pytest.approx(0.0, abs=1e-12)  # one pass: its cross only
    centres = torch.tensor([[8 * (k // w) + 4.0, 8 * (k % w) + 4.0] for k in range(h * w)], dtype=torch.float64)
    distance = sum(float(reference[q] @ (centres - centres[y * w + x]).norm(dim=1)) for q, (y, x) in enumerate(zip(ys, xs)))
    assert stats["distance_px"] == pytest.approx(distance / len(ys))
    entropy = -(reference * reference.clamp_min(1e-12).log()).sum(-1).mean()
    assert stats["entropy"] == pytest.approx(float(entropy))


def test_dense_reach_of_uniform_and_one_hot_maps_by_hand():
    h, w = 2, 2
    uniform = torch.full((1, 4, 4), 0.25)
    stats = block_reach([AttentionRecord("position", uniform, (h, w), (h, w))], image_size=(20, 20))  # stride 10
    # every query: distances 0, 10, 10, 10*sqrt(2) to the four cells, each with weight 1/4
    assert stats["distance_px"] == pytest.approx((0 + 10 + 10 + 10 * math.sqrt(2)) / 4)
    assert stats["entropy"] == pytest.approx(math.log(4))
    own = torch.eye(4)[None]
    stats = block_reach([AttentionRecord("non_local", own, (h, w), (h, w))], image_size=(20, 20))
    assert stats["distance_px"] == pytest.approx(0.0) and stats["entropy"] == pytest.approx(0.0, abs=1e-9)


def test_gates_are_read_from_every_block():
    model = nn.ModuleDict({"cca": CrissCrossAttention(8), "pam": PositionAttention(16), "nl": NonLocal2d(8)})
    nn.init.constant_(model["pam"].gamma, -0.25)
    with torch.no_grad():
        model["nl"].conv_out.bn.weight.copy_(torch.tensor([0.5, -1.5, 0, 0, 0, 0, 0, 1.0]))
    assert gate_values(gated_blocks(model)) == {"cca": 0.0, "pam": -0.25, "nl": pytest.approx(3.0 / 8)}
    assert never_engaged_message("head.cca", model["cca"], 6e-4, 400) == (
        "attention in head.cca never engaged: |gamma| < 1e-3 after 400 steps (largest seen 6.0e-04)")
    assert "|output BN scale| < 1e-3" in never_engaged_message("head.nl", model["nl"], 0.0, 5)


class _TwoPassCCA(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.cca, self.se = nn.Conv2d(3, 8, 3, stride=4, padding=1), CrissCrossAttention(8), SqueezeExcitation(8, 2)

    def forward(self, x):
        return self.se(self.cca(self.cca(self.stem(x))))


def test_measure_on_a_model_reads_every_pass_and_the_se_gate():
    torch.manual_seed(0)
    model = _TwoPassCCA().train()
    images = torch.randn(2, 3, 32, 48)
    stats = measure_on_batch(model, images)
    assert model.training and torch.is_grad_enabled()  # both restored
    assert set(stats) == {"attention/cca/entropy", "attention/cca/distance_px", "attention/cca/beyond_cross",
                          "attention/se/mean_gate"}
    assert stats["attention/cca/beyond_cross"] > 0  # two passes on an 8 x 12 map reach off the cross
    with torch.no_grad():
        model.eval()
        features = model.cca(model.cca(model.stem(images)))
        assert stats["attention/se/mean_gate"] == pytest.approx(float(model.se._scale(features).mean()), rel=1e-5)


def _tiny_run(data_root, run_dir, steps, *extra, progress_bar=False):
    return [f"data.root={data_root}", f"hydra.run.dir={run_dir}", f"trainer.max_steps={steps}",
            "trainer.val_check_interval=2", "trainer.num_sanity_val_steps=0", f"trainer.enable_progress_bar={progress_bar}",
            "trainer.log_every_n_steps=1", "data.train_transform.crop_size=[32,32]", "data.batch_size=2",
            "data.val_batch_size=1", "checkpoint.every_n_steps=2", "head.channels=16", "model.aux_channels=8", *extra]


def _train(*overrides, **env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "train.py"), *overrides], cwd=root, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_a_gate_that_never_moves_is_reported_and_everything_is_logged(tiny_cityscapes, tmp_path):
    import csv
    import json

    from PIL import Image

    run_dir = tmp_path / "run"
    out = _train("head=ccnet", "optim.head_lr_mult=0", *_tiny_run(tiny_cityscapes, run_dir, 2))  # the head never learns
    assert "attention in head.cca never engaged: |gamma| < 1e-3 after 2 steps (largest seen 0.0e+00)" in out
    assert out.index("never engaged") < out.index("Run folder:")
    saved = json.loads((run_dir / "attention.json").read_text())
    assert saved["step"] == 2 and saved["engaged"] == {"head.cca": False} and saved["gates"] == {"head.cca": 0.0}
    assert saved["reach"]["attention/head.cca/distance_px"] > 0 and "attention/head.cca/beyond_cross" in saved["reach"]
    with open(run_dir / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["attention/head.cca/gate"]) for r in rows if r.get("attention/head.cca/gate")] == [0.0, 0.0]
    assert sum(1 for r in rows if r.get("attention/head.cca/entropy")) == 1  # one validation (step 2)
    assert Image.open(run_dir / "curves.png").size[1] > 1000  # five panels: + gates + distance


def test_wandb_mlflow_class_weights_and_optional_callbacks_from_one_override_each(tiny_cityscapes, tmp_path):
    import json
    import sqlite3

    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    weights = tmp_path / "class_weight.json"
    weights.write_text(json.dumps({"class_weight": [1.0] * 18 + [5.0]}))
    run_dir = tmp_path / "run"
    _train("head=danet", "logger=[csv,wandb,mlflow]", "callbacks=[default,early_stopping,rich_progress_bar]",
           f"loss.class_weight={weights}", "loss.average=weighted",
           "+loss_per_output.aux._target_=segattn.losses.OhemCrossEntropy", "+loss_per_output.aux.min_kept=10",
           *_tiny_run(tiny_cityscapes, run_dir, 2, progress_bar=True),
           WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_CACHE_DIR=str(tmp_path / "wc"),
           WANDB_CONFIG_DIR=str(tmp_path / "wcfg"), WANDB_SILENT="true")
    keys = {k for (k,) in sqlite3.connect(run_dir / "mlflow.db").execute("select distinct key from metrics")}
    assert {"val/mIoU", "train/loss", "attention/head.sa/gate", "attention/head.sa/distance_px",
            "attention/head.sc/entropy"} <= keys
    offline = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 1000
    assert not (run_dir / "tb").exists()  # the list replaced the defaults
    config = read_file(run_dir / "checkpoints" / "last.ckpt")["config"]
    assert config["loss"]["class_weight"] == str(weights) and config["loss_per_output"]["aux"]["min_kept"] == 10
    assert set(config["callbacks"]) >= {"early_stopping", "rich_progress_bar", "attention_diagnostics"}


def test_a_logger_whose_package_is_missing_is_one_clear_line(tiny_cityscapes, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "train.py"), "+logger.broken._target_=not_a_package.Logger",
                           *_tiny_run(tiny_cityscapes, tmp_path / "run", 1)], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert "train.py: error: logger.broken: expected an installed package, found none (not_a_package)" in proc.stderr


def test_diagnostics_under_ddp_with_two_gloo_processes(tiny_cityscapes, tmp_path):
    import json

    run_dir = tmp_path / "ddp"
    out = _train("trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "head=ccnet", "optim.head_lr_mult=0",
                 *_tiny_run(tiny_cityscapes, run_dir, 2), OMP_NUM_THREADS="1")
    assert "MEMBER: 2/2" in out
    assert out.count("attention in head.cca never engaged") == 1  # from rank 0 only
    assert json.loads((run_dir / "attention.json").read_text())["step"] == 2


def test_overhead_benchmark_writes_its_table(tmp_path):
    from script_loader import load_script

    out = tmp_path / "results.md"
    load_script("benchmark_diagnostics").main([
        "head=danet", "head.channels=16", "model.aux_channels=8", "data.batch_size=1",
        "data.train_transform.crop_size=[32,32]", "callbacks.attention_diagnostics.crop=32", "--repeats", "1",
        "--warmup", "0", "--device", "cpu", "--out", str(out)])
    row = out.read_text().splitlines()[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 7 and "2 images, 32x32" in cells[3] and cells[6].endswith("%")
    assert float(cells[0]) > 0 and float(cells[2]) >= 0
