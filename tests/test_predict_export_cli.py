"""segattn-predict and segattn-export end to end (scripts/predict.py, scripts/export.py) on a published file."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.checkpoints import random_checkpoint
from PIL import Image

import segattn
from segattn.checkpoints import read_file
from segattn.constants import IMAGENET_MEAN, IMAGENET_STD

REPO = Path(__file__).resolve().parents[1]
ZOO_CCNET = REPO / "tests" / "fixtures" / "mmseg-tiny" / "ccnet_r18-d8_512x1024_80k_cityscapes_tiny-0000aaaa.pth"


def run(script: str, *args, cwd: Path):
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=cwd, capture_output=True, text=True)


def _small_pipeline_checkpoint(tmp_path: Path) -> Path:
    """A random tiny CCNet checkpoint whose test pipeline resizes to fit 64 x 48 (keep ratio), whole image."""
    path = random_checkpoint(tmp_path, "ccnet")
    ckpt = read_file(path)
    ckpt["config"]["data"]["val_transform"].update(resize_short=None, resize_scale=[64, 48])
    ckpt["config"]["eval"] = {"mode": "whole"}
    torch.save(ckpt, path)
    return path


def _expected_ids(model, rgb: np.ndarray) -> np.ndarray:
    """The pipeline written out: keep-ratio resize by min(64 / long, 48 / short), ImageNet normalisation, one
    forward pass, logits resized back to the image, argmax."""
    h, w = rgb.shape[:2]
    factor = min(64 / max(h, w), 48 / min(h, w))
    resized = cv2.resize(rgb, (int(w * factor + 0.5), int(h * factor + 0.5)), interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(resized).permute(2, 0, 1).float()[None] / 255
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = F.interpolate(model(x), size=(h, w), mode="bilinear", align_corners=model.align_corners)
    return logits.argmax(1)[0].numpy()


def test_predict_follows_the_checkpoints_pipeline_and_keeps_every_output(tmp_path):
    ckpt = _small_pipeline_checkpoint(tmp_path)
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {"a.png": rng.integers(0, 256, (36, 52, 3), dtype=np.uint8),  # a.png and a.jpg: a_png, a_jpg
              "a.jpg": rng.integers(0, 256, (30, 44, 3), dtype=np.uint8),
              "sub/a.png": rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)}  # its relative path: sub/a
    for name, array in arrays.items():
        Image.fromarray(array).save(images / name, quality=95)
    done = run("predict.py", f"ckpt={ckpt}", f"images={images}", f"out={tmp_path / 'out'}", "precision=32-true",
               "device=cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 images predicted (whole, resize {'resize_scale': [64, 48]}" in done.stdout
    model = segattn.load_model(ckpt)
    for name, base in (("a.png", "a_png"), ("a.jpg", "a_jpg"), ("sub/a.png", "sub/a")):
        labels = np.asarray(Image.open(tmp_path / "out" / f"{base}_labels.png"))
        expected = _expected_ids(model, np.asarray(Image.open(images / name).convert("RGB")))
        assert labels.shape == expected.shape and (labels == expected).mean() > 0.999  # threads may flip a near-tie
        assert Image.open(tmp_path / "out" / f"{base}_color.png").mode == "P"
        assert Image.open(tmp_path / "out" / f"{base}_overlay.png").size == labels.shape[::-1]
    done = run("predict.py", f"ckpt={ckpt}", f"images={tmp_path / 'nothing' / '*.png'}", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "predict.py: error: images=" in done.stderr and "found none" in done.stderr
    done = run("predict.py", f"ckpt={ckpt}", f"images=[{images / 'a.png'},{images / 'sub' / 'a.png'}]", cwd=tmp_path)
    assert done.returncode == 1 and "sub/a.png would both be written as a_color.png; predict them in separate runs" in done.stderr


def test_predict_and_eval_without_required_arguments_name_them(tmp_path):
    done = run("predict.py", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.strip() == \
        "predict.py: error: ckpt, images are required: pass ckpt=<value> images=<value> (see --help)"
    done = subprocess.run([sys.executable, str(REPO / "evaluate.py")], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.strip() == \
        "evaluate.py: error: ckpt is required: pass ckpt=<value> (see --help)"


def test_export_cli_writes_an_onnx_model_equal_to_the_checkpoint(tmp_path):
    from segattn.export.runtime import OnnxRuntimeModel

    pytest.importorskip("onnxruntime")
    done = run("export.py", f"ckpt={ZOO_CCNET}", "format=onnx", f"out={tmp_path / 'ccnet.onnx'}", "size=[64,64]",
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    onnx_model, model = OnnxRuntimeModel(tmp_path / "ccnet.onnx"), segattn.load_model(ZOO_CCNET)
    x = torch.randn(1, 3, 41, 57)
    with torch.no_grad():
        assert (onnx_model(x) - model(x)).abs().max() < 1e-4
    assert onnx_model.class_names == model.class_names and onnx_model.palette == [list(c) for c in model.palette]
    done = run("export.py", f"ckpt={tmp_path / 'ccnet.onnx'}", "format=onnx", f"out={tmp_path / 'again.onnx'}",
               cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "export.py: error:" in done.stderr and "is not a PyTorch checkpoint" in done.stderr
