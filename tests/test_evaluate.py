"""End to end: train 2 steps with train.py, then evaluate the run with evaluate.py (tiny synthetic data)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from segattn.cli.config import CONFIG_DIR
from segattn.cli.evaluate import evaluate
from segattn.data.cityscapes import TRAIN_TO_LABEL_ID, CityscapesDataset, label_ids_to_train_ids, train_ids_to_label_ids
from segattn.data.files import read_label
from segattn.evaluation import cityscapes_extras
from segattn.evaluation.settings import EvaluationError

REPO = Path(__file__).resolve().parents[1]
INSTANCE_LABEL_IDS = (24, 25, 26, 27, 28, 31, 32, 33)


def _add_instance_maps(root: Path) -> None:
    """Write ``*_gtFine_instanceIds.png`` for the val split: one instance per instance class and image."""
    for label_file in (root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"):
        label_ids = read_label(label_file).astype(np.uint16)
        instances = np.where(np.isin(label_ids, INSTANCE_LABEL_IDS), label_ids * 1000 + 1, label_ids)
        cv2.imwrite(str(label_file).replace("labelIds", "instanceIds"), instances)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A training run folder (2 steps of a ResNet-18 + thin FCN head on 64x128 synthetic Cityscapes)."""
    tmp = tmp_path_factory.mktemp("e2e")
    overrides = [
        "head=fcn", "backbone=resnet18", "head.channels=16", "model.aux_channels=16",
        "data.root=cityscapes", "data.generate.num_train=4", "data.generate.num_val=2",  # root: relative to cwd
        "++data.generate.num_test=1", "data.generate.height=64", "data.generate.width=128",
        "data.batch_size=2", "data.val_batch_size=1", "data.train_transform.crop_size=[64,64]",
        "trainer.max_steps=2", "trainer.val_check_interval=2",
        "trainer.num_sanity_val_steps=0", "trainer.accelerator=cpu", "trainer.devices=1",
        "++trainer.enable_progress_bar=false", f"hydra.run.dir={tmp / 'run'}",
    ]
    done = subprocess.run([sys.executable, str(REPO / "train.py"), *overrides], cwd=tmp, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"generating the built-in data under {tmp / 'cityscapes'} (first use" in done.stdout
    _add_instance_maps(tmp / "cityscapes")
    return tmp / "run"


def run_eval(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=list(overrides))
    return evaluate(cfg)


def _hand_set_checkpoint(run: Path, path: Path):
    """The run's checkpoint with a hand-set classifier (normal(0, 2) weights, uniform(-1, 1) biases): a fixed model
    that predicts many classes, unlike the 2-step one. Returns the model (eval mode)."""
    from segattn.models.checkpoint import build_model

    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    model = build_model(ckpt, path)
    torch.manual_seed(0)
    with torch.no_grad():
        model.head.cls[1].weight.normal_(0, 2.0)
        model.head.cls[1].bias.uniform_(-1, 1)
    ckpt["state_dict"] = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save(ckpt, path)
    return model, ckpt


def test_evaluate_equals_training_validation_and_writes_reports(run, tmp_path):
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from segattn.engine.module import SegmentationModule

    model, ckpt = _hand_set_checkpoint(run, tmp_path / "hand_set.ckpt")
    module = SegmentationModule(model, torch.nn.CrossEntropyLoss(ignore_index=255), ckpt["class_names"], {}, 1)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False, precision="32-true")
    trainer.validate(module, instantiate(ckpt["config"]["data"]), verbose=False)
    validation = module.val_metrics
    out = tmp_path / "report"
    metrics = run_eval(f"ckpt={tmp_path / 'hand_set.ckpt'}", f"eval.out={out}", "eval.precision=32-true")
    confusion = np.array(json.loads((out / "metrics.json").read_text())["confusion"])
    assert (confusion.sum(0) > 0).sum() >= 8 and metrics["mIoU"] > 0  # predicts many classes, some right
    assert metrics["per_class"] == validation["per_class"]
    assert metrics["mIoU"] == pytest.approx(validation["mIoU"], abs=1e-9)
    assert metrics["aAcc"] == pytest.approx(validation["aAcc"], abs=1e-9)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved["mIoU"] == pytest.approx(metrics["mIoU"])
    assert list(saved["per_class"]) == list(CityscapesDataset.CLASSES)
    assert np.array(saved["confusion"]).shape == (19, 19)
    assert saved["settings"]["checkpoint"].endswith("hand_set.ckpt") and saved["settings"]["images"] == 2
    assert re.fullmatch(r"[0-9a-f]{64}", saved["settings"]["checkpoint_sha256"])
    assert set(saved["cityscapes"]["per_category"]) == set(cityscapes_extras.CATEGORIES)
    instance_classes = {"person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"}
    assert set(saved["cityscapes"]["per_class_iIoU"]) == instance_classes
    assert "iIoU_missing" not in saved["cityscapes"]
    csv_lines = (out / "per_class.csv").read_text().splitlines()
    assert csv_lines[0] == "class,IoU,Acc" and len(csv_lines) == 20
    report = (out / "report.md").read_text()
    assert "| mIoU |" in report and "| mode | `whole` |" in report and "iIoU (mean)" in report
    for png in ("confusion.png", "per_class_iou.png"):
        assert Image.open(out / png).size[0] > 100
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_slide_multiscale_flip_settings_are_reported(run, tmp_path):
    out = tmp_path / "slide"
    metrics = run_eval(f"ckpt={run}/checkpoints/last.ckpt", f"eval.out={out}", "eval.mode=slide",
                       "eval.crop_size=[48,48]", "eval.stride=[32,32]", "eval.scales=[0.75,1.0]", "eval.flip=true")
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["mode"] == "slide" and settings["crop_size"] == [48, 48] and settings["scales"] == [0.75, 1.0]
    assert settings["flip"] is True and 0.0 <= metrics["mIoU"] <= 100.0


def test_save_predictions_label_ids_round_trip_to_train_ids(run, tmp_path):
    out = tmp_path / "pred"
    run_eval(f"ckpt={run}", f"eval.out={out}", "eval.save_predictions=true")
    results = sorted((out / "cityscapes_results").iterdir())
    assert [p.name for p in results] == ["frankfurt_000000_000019_leftImg8bit.png",
                                         "lindau_000000_000019_leftImg8bit.png"]
    for path in results:
        label_ids = read_label(path)
        assert set(np.unique(label_ids)) <= set(TRAIN_TO_LABEL_ID)
        colour = Image.open(out / "visual" / path.name.split("_")[0] / path.name.replace(".png", "_color.png"))
        assert colour.mode == "P"  # palette PNG: pixel values are the train ids
        np.testing.assert_array_equal(label_ids_to_train_ids(label_ids), np.asarray(colour))
    every = np.arange(19)
    np.testing.assert_array_equal(label_ids_to_train_ids(train_ids_to_label_ids(every)), every)
    assert cityscapes_extras.LABEL_IDS == TRAIN_TO_LABEL_ID


def test_test_split_exports_predictions_without_metrics(run, tmp_path):
    out = tmp_path / "test"
    assert run_eval(f"ckpt={run}", f"eval.out={out}", "eval.split=test", "eval.save_predictions=true") is None
    assert [p.name for p in (out / "cityscapes_results").iterdir()] == ["berlin_000000_000019_leftImg8bit.png"]
    saved = json.loads((out / "metrics.json").read_text())
    assert "mIoU" not in saved and saved["settings"]["labelled"] is False
    with pytest.raises(EvaluationError, match="split 'test' of CityscapesDataset .* has no labels"):
        run_eval(f"ckpt={run}", f"eval.out={out}", "eval.split=test")


def test_the_run_stores_its_data_root_absolute_so_evaluation_elsewhere_finds_it(run):
    from segattn.checkpoints import read_segattn_checkpoint

    stored = read_segattn_checkpoint(run / "checkpoints" / "best.ckpt")["config"]["data"]["root"]
    assert stored == str(run.parent / "cityscapes")  # trained with data.root=cityscapes in run.parent
    assert Path.cwd() != run.parent and "road" in run_eval(f"ckpt={run}", f"eval.out={run.parent / 'elsewhere'}")["per_class"]


def test_another_datasets_class_names_are_an_error_unless_allowed(run, tmp_path):
    renamed = _write_checkpoint(run, tmp_path / "renamed.ckpt",
                                lambda c: c.update(class_names=["street", *c["class_names"][1:]]))
    with pytest.raises(EvaluationError, match=r"class names differ from those .*renamed.ckpt was trained on \(dataset vs "
                                              r"checkpoint, 1 of 19: 0: 'road' vs 'street'\).* pass "
                                              r"eval.allow_other_class_names=true"):
        run_eval(f"ckpt={renamed}", f"eval.out={tmp_path / 'no'}")
    assert not (tmp_path / "no").exists()
    assert "mIoU" in run_eval(f"ckpt={renamed}", f"eval.out={tmp_path / 'yes'}", "eval.allow_other_class_names=true")


def test_onnx_runtime_backend_gives_the_same_report_as_the_checkpoint(run, tmp_path):
    pytest.importorskip("onnxruntime")
    import segattn

    segattn.export_model(segattn.load_model(run), tmp_path / "model.onnx", "onnx", example_size=(32, 32))
    eager = run_eval(f"ckpt={run}", f"eval.out={tmp_path / 'eager'}", "eval.precision=32-true", "eval.device=cpu")
    onnx = run_eval(f"ckpt={run}", f"eval.out={tmp_path / 'onnx'}", "eval.backend=onnxruntime",
                    f"eval.model={tmp_path / 'model.onnx'}", "eval.device=cpu")
    assert onnx["mIoU"] == pytest.approx(eager["mIoU"], abs=1e-6)
    saved = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("eager", "onnx")]
    assert saved[1]["confusion"] == saved[0]["confusion"] and saved[1]["settings"]["backend"] == "onnxruntime"
    with pytest.raises(EvaluationError, match=r"eval.backend=onnxruntime needs eval.model=<file.onnx>"):
        run_eval(f"ckpt={run}", "eval.backend=onnxruntime")


def test_data_overrides_win_over_the_checkpoint(run, tmp_path):
    from segattn.evaluation.settings import data_config
    from segattn.checkpoints import read_segattn_checkpoint as read_checkpoint

    saved = read_checkpoint(run / "checkpoints" / "best.ckpt")["config"]["data"]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        only_root = compose("eval", overrides=[f"ckpt={run}", "data.root=/elsewhere",
                                               "+data.val_transform.resize_short=32"])
        group = compose("eval", overrides=[f"ckpt={run}", "data=synthetic", "data.root=/other"])
    merged = data_config(saved, only_root.data)
    assert merged.root == "/elsewhere" and merged.generate.num_train == 4 and merged.val_transform.resize_short == 32
    chosen = data_config(saved, group.data)
    assert chosen.root == "/other" and chosen.generate.num_train == 200


def _write_checkpoint(run: Path, path: Path, edit) -> Path:
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    edit(ckpt)
    torch.save(ckpt, path)
    return path


def test_bad_checkpoints_are_one_clear_message(run, tmp_path):
    with pytest.raises(EvaluationError, match="no such file or folder"):
        run_eval(f"ckpt={tmp_path / 'missing.ckpt'}")
    with pytest.raises(EvaluationError, match="a folder without checkpoints/best.ckpt or checkpoints/last.ckpt"):
        run_eval(f"ckpt={tmp_path}")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(EvaluationError, match="junk.ckpt is not a PyTorch checkpoint"):
        run_eval(f"ckpt={tmp_path / 'junk.ckpt'}")
    wider = _write_checkpoint(run, tmp_path / "wider.ckpt", lambda c: c["config"]["head"].update(channels=32))
    shape_message = r"do not fit the model .* with another shape, checkpoint vs model \(e\.g\. head"
    with pytest.raises(EvaluationError, match=shape_message):
        run_eval(f"ckpt={wider}")
    fewer = _write_checkpoint(run, tmp_path / "fewer.ckpt", lambda c: c.update(class_names=c["class_names"][:18]))
    with pytest.raises(EvaluationError, match="trained on 18 classes .* has 19"):
        run_eval(f"ckpt={fewer}")


def test_command_line_error_is_one_line_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "evaluate.py"), f"ckpt={tmp_path / 'nope.ckpt'}"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"evaluate.py: error: ckpt={tmp_path / 'nope.ckpt'}: no such file or folder " \
                                  "(expected a .ckpt file or a training run folder)"


@pytest.mark.parametrize("override,message", [
    ("eval.mode=tiles", "eval.mode must be whole or slide, got 'tiles'"),
    ("eval.backend=tensorrt", r"eval.backend must be one of \['pytorch', 'onnxruntime'\], got 'tensorrt'"),
    ("eval.scales=1.0", r"eval.scales must be a non-empty list of positive numbers, e.g. \[0.75,1.0,1.25\]; got 1.0"),
    ("eval.stride=[0,10]", r"eval.stride must be two positive integers \[h,w\]"),
    ("eval.crop_size=[769,769] eval.stride=[800,513]",
     r"eval.stride must not exceed eval.crop_size .* got stride \[800, 513\] with crop_size \[769, 769\]"),
])
def test_bad_settings_are_one_clear_message(override, message):
    with pytest.raises(EvaluationError, match=message):
        run_eval("ckpt=unused.ckpt", "eval.mode=slide", *override.split())


def test_two_process_evaluation_equals_one_process(run, tmp_path):
    """torchrun with 2 processes (gloo): each image once, confusion and iIoU summed across processes."""
    single, double = tmp_path / "one", tmp_path / "two"
    run_eval(f"ckpt={run}", f"eval.out={single}")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
         str(REPO / "evaluate.py"), f"ckpt={run}", f"eval.out={double}", "eval.device=cpu"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "destroy_process_group" not in done.stderr  # torch warns at exit when the group is left open
    one, two = (json.loads((d / "metrics.json").read_text()) for d in (single, double))
    assert two["settings"]["processes"] == 2 and two["settings"]["images"] == 2
    assert two["confusion"] == one["confusion"]
    assert two["cityscapes"]["per_class_iIoU"] == pytest.approx(one["cityscapes"]["per_class_iIoU"], nan_ok=True)


def test_two_srun_tasks_share_the_split_from_slurm_variables_alone(run, tmp_path):
    """As ``srun --ntasks=2 evaluate.py`` starts it: no WORLD_SIZE, only SLURM's variables (set by hand here);
    the data root does not exist yet, so rank 0 generates it while rank 1 waits."""
    import os

    single, double = tmp_path / "one", tmp_path / "two"
    run_eval(f"ckpt={run}", f"eval.out={single}", "eval.device=cpu")
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "segattn-eval", "SLURM_NTASKS": "2", "SLURM_NNODES": "1",
             "SLURM_NODEID": "0", "SLURM_NODELIST": "127.0.0.1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29541"}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_", "WORLD_SIZE"))}
    tasks = [subprocess.Popen([sys.executable, str(REPO / "evaluate.py"), f"ckpt={run}", f"eval.out={double}",
                               f"data.root={tmp_path / 'fresh'}", "eval.device=cpu"], cwd=tmp_path,
                              env={**base, **slurm, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank),
                                   "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in range(2)]
    outputs = [task.communicate(timeout=300) for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert all("destroy_process_group" not in err for _, err in outputs)  # the group was destroyed
    one, two = (json.loads((d / "metrics.json").read_text()) for d in (single, double))
    assert two["settings"]["processes"] == 2 and two["settings"]["images"] == 2
    assert two["confusion"] == one["confusion"]


def test_the_backend_follows_eval_device_and_the_gpu_is_set_first(monkeypatch):
    import torch.distributed as dist

    from segattn.evaluation import distributed

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key, value in {"RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "GROUP_RANK": "0",
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29542", "TORCHELASTIC_RUN_ID": "t"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # CUDA visible, eval.device=cpu asked for
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", str(d))))
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    assert distributed.init_from_env(torch.device("cpu")) == (1, 2, torch.device("cpu"))
    assert calls == [("init", "gloo")]
    calls.clear()
    assert distributed.init_from_env(torch.device("cuda")) == (1, 2, torch.device("cuda", 1))
    assert calls == [("set_device", "cuda:1"), ("init", "nccl")]
    monkeypatch.setattr(distributed, "_OWNED", False)


def test_data_is_prepared_on_rank_zero_only():
    from segattn.evaluation.distributed import prepare_once

    class Data:
        prepared = 0

        def prepare_data(self):
            self.prepared += 1

    zero, one = Data(), Data()
    prepare_once(zero, rank=0)
    prepare_once(one, rank=1)
    assert (zero.prepared, one.prepared) == (1, 0)
