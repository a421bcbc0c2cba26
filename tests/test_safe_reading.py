"""No file segattn reads runs code: every entry point refuses a pickle that would call a function and a
checkpoint whose stored config names one, with one message, and the marker file the payload would write
never appears. Real release metadata (numpy arrays, mmengine objects) still reads."""
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from helpers.checkpoints import random_checkpoint

import segattn
from segattn.checkpoints import CheckpointError, read_file

ROOT = Path(__file__).resolve().parents[1]
ZOO_CCNET = ROOT / "tests" / "fixtures" / "mmseg-tiny" / "ccnet_r18-d8_512x1024_80k_cityscapes_tiny-0000aaaa.pth"


class _RunsCommand:
    """Unpickling it calls ``os.system(command)``: what a hostile ``.pth`` does."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _pickle_payload(tmp_path: Path) -> tuple[Path, Path]:
    """A zoo-format file whose ``meta`` would run ``touch marker`` when unpickled, and the marker path."""
    marker = tmp_path / "pickle-ran"
    data = read_file(ZOO_CCNET)
    data["meta"] = {"hook": _RunsCommand(f"touch {marker}")}
    path = tmp_path / "ccnet_r18-d8_512x1024_80k_cityscapes_hostile.pth"
    torch.save(data, path)
    return path, marker


def _config_payload(tmp_path: Path) -> tuple[Path, Path]:
    """A segattn checkpoint (tensors and plain data only) whose stored data config names a function that writes
    a file (Hydra's own blocklist stops ``os.system``, not this)."""
    marker = tmp_path / "config-ran"
    path = random_checkpoint(tmp_path, "fcn", run="hostile")
    data = read_file(path)
    data["config"]["data"]["hook"] = {"_target_": "shutil.copyfile", "src": str(ZOO_CCNET), "dst": str(marker)}
    torch.save(data, path)
    return path, marker


PAYLOADS = {"pickle": (_pickle_payload, r"refused: its pickle would import posix.system"),
            "config": (_config_payload, r"refused: its stored config names _target_ 'shutil.copyfile'")}


@pytest.fixture(params=sorted(PAYLOADS))
def payload(request, tmp_path):
    """``(hostile file, marker it would create, expected refusal)`` for each kind of payload."""
    make, message = PAYLOADS[request.param]
    path, marker = make(tmp_path)
    yield path, marker, message
    assert not marker.exists(), f"{request.param} payload ran"


def test_the_payloads_do_run_when_read_unsafely(tmp_path):
    """The check below would be empty if the files could not run code: an unsafe load does run it."""
    path, marker = _pickle_payload(tmp_path)
    torch.load(path, weights_only=False)  # the very call segattn never makes
    assert marker.exists()
    path, marker = _config_payload(tmp_path)
    from hydra.utils import instantiate

    instantiate(read_file(path)["config"]["data"]["hook"])
    assert marker.exists()


def test_load_model_refuses(payload):
    path, _, message = payload
    with pytest.raises(CheckpointError, match=message):
        segattn.load_model(path)


def test_backbone_pretrained_refuses(tmp_path):
    from segattn.models.backbone import ResNetBackbone

    path, marker = _pickle_payload(tmp_path)
    with pytest.raises(CheckpointError, match=r"refused: its pickle would import posix.system"):
        ResNetBackbone(18, stem="v1c", pretrained=str(path))
    assert not marker.exists()


def test_init_from_refuses(payload, tiny_cityscapes):
    from segattn.engine.init_from import InitFromError, init_from

    path, _, message = payload
    model = segattn.create_model("fcn", backbone="resnet18", num_classes=19, channels=16, aux_weight=0)
    with pytest.raises(InitFromError, match=rf"model.init_from={path}: .*{message}"):
        init_from(model, path)


def test_convert_cli_refuses(payload, tmp_path, capsys):
    from segattn.cli.convert import main

    path, _, message = payload
    if "config" in message:  # a segattn checkpoint: nothing to convert, and nothing of it is built
        message = "is a segattn checkpoint already"
    with pytest.raises(SystemExit, match=rf"segattn-convert: error: .*{message}"):
        main([str(path), str(tmp_path / "out.ckpt")])
    assert not (tmp_path / "out.ckpt").exists()


def _run(args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})


@pytest.mark.parametrize("program, extra", [
    ("evaluate.py", ["eval.device=cpu"]),
    ("scripts/predict.py", ["images=x.png"]),
    ("scripts/export.py", ["format=torchscript", "out=model.pt"]),
])
def test_evaluate_predict_and_export_refuse(program, extra, payload, tmp_path):
    """Each says so in one line, named as the user ran it (``segattn-eval`` or ``evaluate.py``)."""
    path, _, message = payload
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    done = _run([ROOT / program, f"ckpt={path}", *extra], cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(f"{Path(program).name}: error: ")
    assert re.search(message, done.stderr), done.stderr


@pytest.mark.parametrize("key", ["ckpt_path", "model.init_from"])
def test_train_resume_and_init_from_refuse(key, payload, tiny_cityscapes, tmp_path):
    path, _, message = payload
    done = _run([ROOT / "train.py", "head=fcn", f"data.root={tiny_cityscapes}", f"hydra.run.dir={tmp_path / 'run'}",
                 "backbone.pretrained=null", "head.channels=16", "model.aux_channels=8", f"{key}={path}"], cwd=ROOT)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("train.py: error: ")
    assert re.search(message, done.stderr), done.stderr


def test_real_release_metadata_still_reads(tmp_path, monkeypatch):
    """A zoo file whose ``meta`` holds numpy arrays and scalars and an mmengine object (a stand-in class of
    mmengine's module path, gone when the file is read) converts to the same model as without them."""
    module = types.ModuleType("mmengine.logging.history_buffer")
    HistoryBuffer = type("HistoryBuffer", (), {"__module__": module.__name__,
                                               "__init__": lambda self: setattr(self, "log", np.arange(4.0))})
    module.HistoryBuffer = HistoryBuffer
    for name in ("mmengine", "mmengine.logging", "mmengine.logging.history_buffer"):
        monkeypatch.setitem(sys.modules, name, module)
    data = read_file(ZOO_CCNET)
    data["meta"] = {"hook_msgs": {"best_score": np.float64(78.5), "history": HistoryBuffer()},
                    "seed": np.int64(0), "iters": np.arange(3)}
    path = tmp_path / ZOO_CCNET.name
    torch.save(data, path)
    monkeypatch.undo()  # mmengine is not installed when the file is read
    assert "mmengine" not in sys.modules
    meta = read_file(path)["meta"]
    assert meta["hook_msgs"] == {"best_score": 78.5} and meta["iters"].tolist() == [0, 1, 2]  # the object dropped
    converted, original = segattn.load_model(path), segattn.load_model(ZOO_CCNET)
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(converted(x), original(x))
