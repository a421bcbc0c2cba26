"""Attention maps from the real forward pass, the drawn grids, the training callbacks and run comparison."""
import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from segattn.cli.config import CONFIG_DIR
from segattn.data.cityscapes import CityscapesDataset
from segattn.data.datamodule import SegDataModule
from segattn.data.synthetic import generate_cityscapes
from segattn.constants import IGNORE_INDEX
from segattn.callbacks.metrics_file import MetricsFile
from segattn.engine.module import SegmentationModule
from segattn.callbacks.visual import TrainingCurves, ValidationImages
from segattn.models.attention import ChannelAttention, NonLocal2d, PositionAttention
from segattn.models.build import build_segmentor
from segattn.models.heads import DANetHead, FCNHead, NonLocalHead, RCCAHead
from segattn.visualization.capture import capture_attention
from segattn.visualization.curves import plot_training_curves
from segattn.visualization.draw import overlay
from segattn.visualization.grids import point_panels
from segattn.visualization.maps import upsample_map
from helpers.checkpoints import random_checkpoint
from script_loader import load_script

REPO = Path(__file__).resolve().parents[1]



# --- return_attention paths of the blocks -------------------------------------------------------------


def test_position_and_channel_attention_return_the_weights_they_use():
    torch.manual_seed(0)
    pam, cam = PositionAttention(16).double(), ChannelAttention().double()
    with torch.no_grad():
        pam.gamma.fill_(0.7)
        cam.gamma.fill_(-0.5)
    x = torch.randn(2, 16, 3, 5, dtype=torch.float64)
    out, weights = pam(x, return_attention=True)
    torch.testing.assert_close(out, pam(x))
    assert weights.shape == (2, 15, 15)
    v = pam.value_conv(x).flatten(2)  # B x C x HW
    torch.testing.assert_close(out, 0.7 * (v @ weights.transpose(1, 2)).view_as(x) + x)
    out, weights = cam(x, return_attention=True)
    torch.testing.assert_close(out, cam(x))
    assert weights.shape == (2, 16, 16)
    torch.testing.assert_close(out, -0.5 * (weights @ x.flatten(2)).view_as(x) + x)


@pytest.mark.parametrize("mode", ["gaussian", "embedded_gaussian", "dot_product", "concatenation"])
@pytest.mark.parametrize("sub_sample", [False, True])
def test_non_local_returns_its_explicit_map(mode, sub_sample):
    torch.manual_seed(0)
    block = NonLocal2d(8, mode=mode, sub_sample=sub_sample).double().eval()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    x = torch.randn(2, 8, 4, 6, dtype=torch.float64)
    out, weights = block(x, return_attention=True)
    torch.testing.assert_close(out, block(x))  # default (SDPA / reassociated) path: same values
    assert weights.shape == (2, 24, 6 if sub_sample else 24)
    if mode in ("gaussian", "embedded_gaussian"):
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 24, dtype=torch.float64))


# --- capture and maps -------------------------------------------------------------------------------


def _toy_ccnet(recurrence=2):
    torch.manual_seed(0)
    head = RCCAHead(32, 3, channels=8, recurrence=recurrence).eval()
    with torch.no_grad():
        head.cca.gamma.fill_(0.5)
        head.cca.query_conv.weight.mul_(4.0)  # sharper, non-uniform attention
    return head


def _dense(weights):
    """N x N matrix of one criss-cross pass from its (h, w, h + w) weights, entry by entry."""
    h, w = weights.shape[:2]
    dense = torch.zeros(h * w, h * w, dtype=weights.dtype)
    for i in range(h):
        for j in range(w):
            for k in range(h):
                dense[i * w + j, k * w + j] += weights[i, j, k]
            for col in range(w):
                dense[i * w + j, i * w + col] += weights[i, j, h + col]
    return dense


def test_criss_cross_drawn_maps_one_pass_on_the_cross_two_passes_everywhere():
    head = _toy_ccnet()
    x = torch.randn(1, 32, 6, 8)
    expected = head(x)["out"]
    with capture_attention(head) as records, torch.no_grad():
        out = head(x)["out"]
    torch.testing.assert_close(out, expected)  # the hooks do not change the forward pass
    assert not head.cca._forward_hooks and not head.cca._forward_pre_hooks
    calls = records["cca"]
    assert len(calls) == 2 and calls[0].weights.shape == (1, 6, 8, 14)
    assert not torch.equal(calls[0].weights, calls[1].weights)

    image_size, point = (48, 64), (20, 45)  # 8 px per cell: cell (2, 5)
    one, two = point_panels(records, point, image_size, "point 1")
    assert "pass 1 of 2" in one.title and "after 2 passes" in two.title
    cross = torch.zeros(6, 8)
    cross[2, :], cross[:, 5] = 1, 1
    on_cross = upsample_map(cross, image_size) > 0
    assert one.heat.shape == image_size
    assert (one.heat[~on_cross] == 0).all() and (one.heat[on_cross] > 0).all()
    assert (two.heat > 0).all()

    # the composition is the product of the passes' matrices: row u of A2 A1
    a1, a2 = (_dense(c.weights[0].double()) for c in calls)
    u = 2 * 8 + 5
    assert np.allclose(one.heat[::8, ::8].ravel(), a1[u].numpy(), atol=1e-6)
    assert np.allclose(two.heat[::8, ::8].ravel(), (a2 @ a1)[u].numpy(), atol=1e-6)
    assert two.heat[::8, ::8].sum() == pytest.approx(1.0, abs=1e-5)


def test_danet_and_non_local_panels_show_each_points_row():
    torch.manual_seed(0)
    danet, nonlocal_head = DANetHead(16, 3, channels=16).eval(), NonLocalHead(16, 3, channels=8, sub_sample=True).eval()
    x = torch.randn(1, 16, 4, 6)
    with capture_attention(danet) as danet_records, capture_attention(nonlocal_head) as nl_records, torch.no_grad():
        danet(x), nonlocal_head(x)
    image_size, point = (32, 48), (17, 30)  # 8 px per cell: cell (2, 3)
    pam, cam = point_panels(danet_records, point, image_size, "p")
    assert "position attention" in pam.title and pam.heat.shape == image_size
    torch.testing.assert_close(torch.from_numpy(pam.heat[::8, ::8].ravel()), danet_records["sa"][0].weights[0, 2 * 6 + 3])
    channel_call = danet_records["sc"][0]
    strongest = int(channel_call.features[0, :, 2, 3].argmax())
    labels, values = cam.bars
    assert f"channel {strongest} " in cam.title and len(labels) == 8 and values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(channel_call.weights[0, strongest].max().item())
    (nl,) = point_panels(nl_records, point, image_size, "p")
    assert nl_records["nl_block"][0].key_size == (2, 3)  # max-pooled keys: each drawn as a 16 x 16 block
    assert nl.heat[::16, ::16].sum() == pytest.approx(1.0, abs=1e-5)


def test_capture_needs_an_attention_block():
    with pytest.raises(ValueError, match="FCNHead has no attention block"):
        with capture_attention(FCNHead(16, 3, channels=8)):
            pass


def test_overlay_blends_class_colours_and_keeps_ignored_pixels():
    image = np.full((2, 2, 3), 100, np.uint8)
    ids = np.array([[0, 1], [IGNORE_INDEX, 0]], np.uint8)
    out = overlay(image, ids, [(200, 0, 0), (0, 0, 250)], alpha=0.5)
    assert out[0, 0].tolist() == [150, 50, 50] and out[0, 1].tolist() == [50, 50, 175]
    assert out[1, 0].tolist() == [100, 100, 100]


# --- the visualiser script on a checkpoint --------------------------------------------------------------


@pytest.mark.parametrize("head,panels", [("ccnet", 2), ("danet", 2), ("nonlocal", 1), ("dnl", 1)])
def test_visualize_attention_script_writes_the_grid(tmp_path, head, panels):
    script = load_script("visualize_attention")
    ckpt = random_checkpoint(tmp_path, head)
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "street.png"), image)
    points = [[10, 20], [40, 70]]
    args = script.parse_args([f"ckpt={ckpt.parent.parent}", f"image={tmp_path / 'street.png'}", f"points={points}"])
    out = script.visualize(args)
    assert out == ckpt.parent.parent / "attention" / "street.png"
    width, height = Image.open(out).size
    assert width > 500 and height > 150 * (1 + len(points) * panels // max(2, panels))
    with pytest.raises(SystemExit, match=r"outside the image \(64 rows x 96 columns"):
        script.main([f"ckpt={ckpt}", f"image={tmp_path / 'street.png'}", "points=[[64,0]]"])
    with pytest.raises(SystemExit, match="unknown argument"):
        script.main([f"ckpt={ckpt}", "img=x.png"])


# --- callbacks in a real (tiny) training run, then the comparison -------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Run folder of 2 training steps (ResNet-18 + thin FCN, 32x64 images) with the drawing callbacks."""
    tmp = tmp_path_factory.mktemp("vis_run")
    root = generate_cityscapes(tmp / "data", num_train=2, num_val=3, height=32, width=64, seed=0)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["head=fcn", "head.channels=8", "model.aux_weight=0"])
    config = OmegaConf.to_container(cfg, resolve=True)
    data = SegDataModule(functools.partial(CityscapesDataset), root, {"crop_size": [32, 32]}, {}, batch_size=2)
    module = SegmentationModule(build_segmentor(config, data.num_classes), torch.nn.CrossEntropyLoss(ignore_index=255),
                                data.class_names, config["optim"], max_steps=2)
    run_dir = tmp / "run"
    trainer = pl.Trainer(
        max_steps=2, val_check_interval=1, check_val_every_n_epoch=None, log_every_n_steps=1,
        num_sanity_val_steps=1, accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, logger=[CSVLogger(run_dir, name="logs", version=""),
                                            TensorBoardLogger(run_dir, name="tb", version="")],
        callbacks=[pl.callbacks.LearningRateMonitor("step"), MetricsFile(run_dir / "metrics.json"),
                   ValidationImages(run_dir / "val_images", num_images=2),
                   TrainingCurves(run_dir / "logs" / "metrics.csv", run_dir / "curves.png")],
    )
    trainer.fit(module, datamodule=data)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return run_dir


def test_validation_images_and_curves_are_written(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert sorted(p.name for p in (run / "val_images").iterdir()) == ["step_0000001.png", "step_0000002.png"]
    width, height = Image.open(run / "val_images" / "step_0000002.png").size
    assert width > 4 * 200 and height > 2 * 80  # 4 columns, 2 images
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    events.Reload()
    logged = events.Images("val/predictions")
    assert [e.step for e in logged] == [1, 2] and (logged[0].width, logged[0].height) == (width, height)
    assert Image.open(run / "curves.png").size[0] > 400


def test_curves_need_something_to_plot(tmp_path):
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("epoch,step,other\n0,1,3.0\n")
    with pytest.raises(ValueError, match="no train/loss, val/mIoU or lr-\\* column"):
        plot_training_curves(csv_path, tmp_path / "curves.png")


def _fake_run(folder: Path, class_names, iou) -> Path:
    folder.mkdir(parents=True)
    per_class = {name: {"IoU": value, "Acc": value} for name, value in zip(class_names, iou)}
    (folder / "metrics.json").write_text(json.dumps(
        {"mIoU": 55.5, "aAcc": 80.25, "mAcc": 60.125, "per_class": per_class, "step": 300, "peak_memory_mib": 2048}))
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text(
        "head:\n  _target_: segattn.models.heads.ccnet.RCCAHead\n  recurrence: 2\n"
        "backbone:\n  depth: 50\n  output_stride: 8\n  attention: cbam\n")
    (folder / ".hydra" / "hydra.yaml").write_text("hydra:\n  runtime:\n    choices:\n      head: ccnet\n")
    return folder


def test_compare_runs_table_and_chart(run, tmp_path):
    names = list(CityscapesDataset.CLASSES)
    fake = _fake_run(tmp_path / "outputs" / "ccnet_r50", names, [50.0, None] + [70.0] * (len(names) - 2))
    script = load_script("compare_runs")
    script.main([str(run), str(fake), "--out", str(tmp_path / "cmp")])
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| outputs/ccnet_r50 | ccnet (R=2) | resnet50 OS8 +cbam | 300 | 55.50 | 80.25 | 60.12 | n/a | 2048 MiB |" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {run.parent.name}/run |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    trained = json.loads((run / "metrics.json").read_text())
    assert cells[1:4] == ["FCNHead", "resnet18 OS16", "2"] and cells[4] == f"{trained['mIoU']:.2f}"
    assert cells[7].endswith("s") and cells[8].endswith(" MiB")  # time from the TensorBoard events, memory from metrics.json
    assert Image.open(tmp_path / "cmp" / "per_class_iou.png").size[1] > 400
    with pytest.raises(SystemExit):
        script.main([str(tmp_path)])  # not a run folder
