"""segattn-predict and segattn-export end to end (scripts/predict.py, scripts/export.py) on a published file."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import segattn

REPO = Path(__file__).resolve().parents[1]
ZOO_CCNET = REPO / "tests" / "fixtures" / "mmseg-tiny" / "ccnet_r18-d8_512x1024_80k_cityscapes_tiny-0000aaaa.pth"


def run(script: str, *args, cwd: Path):
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], cwd=cwd, capture_output=True, text=True)


def test_predict_writes_colour_masks_overlays_and_the_model_class_ids(tmp_path):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {"a.png": rng.integers(0, 256, (36, 52, 3), dtype=np.uint8),
              "sub/b.jpg": rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)}
    for name, array in arrays.items():
        Image.fromarray(array).save(images / name, quality=100)
    done = run("predict.py", f"ckpt={ZOO_CCNET}", f"images={images}", f"out={tmp_path / 'out'}", "mode=whole",
               "precision=32-true", "device=cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    model = segattn.load_model(ZOO_CCNET)
    for name in arrays:
        base = tmp_path / "out" / Path(name).with_suffix("")
        labels = np.asarray(Image.open(f"{base}_labels.png"))
        expected = model.predict(images / name).numpy()
        assert labels.shape == expected.shape and (labels == expected).mean() > 0.999  # threads may flip a near-tie
        assert Image.open(f"{base}_color.png").mode == "P" and Image.open(f"{base}_overlay.png").size == labels.shape[::-1]
    done = run("predict.py", f"ckpt={ZOO_CCNET}", f"images={tmp_path / 'nothing' / '*.png'}", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "segattn-predict: error: images=" in done.stderr and "found none" in done.stderr


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
    assert "segattn-export: error:" in done.stderr and "not a readable PyTorch checkpoint" in done.stderr
