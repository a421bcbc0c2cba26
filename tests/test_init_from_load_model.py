"""``model.init_from`` in train.py and ``segattn.load_model`` on trained and converted checkpoints."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_every_head_trains import compose_run

import segattn
from segattn.cli.train import train
from segattn.engine.init_from import InitFromError, init_from
from segattn.models.build import build_segmentor
from segattn.checkpoints import read_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "mmseg-tiny"
CCNET = FIXTURES / "ccnet_r18-d8_512x1024_80k_cityscapes_tiny-0000aaaa.pth"
FCN_ADE = FIXTURES / "fcn_r50-d8_512x512_80k_ade20k_tiny-0000dddd.pth"
V1C_TINY = ["backbone.stem=v1c", "backbone.stem_channels=16", "backbone.base_channels=8",
            "backbone.contract_dilation=true", "backbone.dilate_basic_conv2=false", "model.aux_channels=8"]
CCNET_TINY = ["head=ccnet", "head.channels=16", "head.inter_channels=16", *V1C_TINY]
FCN_TINY = ["backbone=resnet50", "head=fcn", "head.channels=16", "head.concat_input=true", *V1C_TINY]


def test_init_from_a_zoo_file_trains_and_the_checkpoint_loads(tiny_cityscapes, tmp_path, capsys):
    cfg = compose_run(tiny_cityscapes, tmp_path / "run", *CCNET_TINY, f"model.init_from={CCNET}",
                      "model.align_corners=true", "backbone.pretrained=/no/imagenet/file.pth")  # skipped
    train(cfg)
    assert f"init_from: 173 tensors from {CCNET.name} (mmseg file)" in capsys.readouterr().out
    ckpt = read_file(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 2 and ckpt["config"]["model"]["align_corners"] is True
    model = segattn.load_model(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert not model.training and model.align_corners and model.class_names[0] == "road"
    assert len(model.palette) == 19 and tuple(model.palette[0]) == (128, 64, 128)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 20, 30)).shape == (1, 19, 20, 30)


def test_init_from_copies_weights_and_reinitialises_classifiers_on_another_class_count(tiny_cityscapes, tmp_path):
    cfg = compose_run(tiny_cityscapes, tmp_path / "run", *FCN_TINY)
    model = build_segmentor(cfg, 19)
    fresh_cls = model.head.cls[1].weight.clone()
    report = init_from(model, FCN_ADE)
    assert report.endswith("150 classes in the file, 19 here: classifiers re-initialised (aux_head.cls.1, head.cls.1)")
    source = read_file(FCN_ADE)["state_dict"]
    assert torch.equal(model.head.conv_cat[0].weight, source["decode_head.conv_cat.conv.weight"])
    assert torch.equal(model.backbone.stem[0].weight, source["backbone.stem.0.weight"])
    assert torch.equal(model.head.cls[1].weight, fresh_cls)
    same = build_segmentor(cfg, 150)
    assert "re-initialised" not in init_from(same, FCN_ADE)
    assert torch.equal(same.head.cls[1].weight, source["decode_head.conv_seg.weight"])


def test_init_from_a_segattn_checkpoint_and_another_architecture(tiny_cityscapes, tmp_path):
    from segattn.convert import convert_checkpoint, save_checkpoint

    ckpt, _ = convert_checkpoint(CCNET)
    save_checkpoint(ckpt, tmp_path / "ccnet.ckpt")
    cfg = compose_run(tiny_cityscapes, tmp_path / "run", *CCNET_TINY)
    model = build_segmentor(cfg, 19)
    assert "(segattn checkpoint)" in init_from(model, tmp_path / "ccnet.ckpt")
    assert torch.equal(model.head.cca.gamma, ckpt["state_dict"]["model.head.cca.gamma"])
    with pytest.raises(InitFromError, match="is another architecture than this run's model: parameters .* missing"):
        init_from(build_segmentor(compose_run(tiny_cityscapes, tmp_path / "r2", *FCN_TINY), 19), tmp_path / "ccnet.ckpt")


def test_train_py_reports_another_architecture_in_one_line(tiny_cityscapes, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), f"data.root={tiny_cityscapes}",
                           f"hydra.run.dir={tmp_path / 'run'}", "head=danet", f"model.init_from={CCNET}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"train.py: error: model.init_from={CCNET} is another architecture than this run's model")


def test_checkpoints_of_the_earlier_nested_deep_stem_still_load(tmp_path):
    """Before the stem layouts, deep_stem=true nested the stem as stem.0.<i>: such runs still load."""
    from functools import partial

    from segattn.models.backbone import ResNetBackbone
    from segattn.models.checkpoint import build_model
    from segattn.models.heads import FCNHead
    from segattn.models.segmentor import Segmentor

    model = Segmentor(ResNetBackbone(18, deep_stem=True), partial(FCNHead, channels=8), 3, aux_channels=8)
    state = {("model.backbone.stem.0." + k[len("backbone.stem."):] if k.startswith("backbone.stem.") else f"model.{k}"): v
             for k, v in model.state_dict().items()}
    assert "model.backbone.stem.0.6.weight" in state
    config = {"backbone": {"_target_": "segattn.models.backbone.ResNetBackbone", "depth": 18, "deep_stem": True},
              "head": {"_target_": "segattn.models.heads.fcn.FCNHead", "_partial_": True, "channels": 8},
              "model": {"aux_channels": 8}}
    loaded = build_model({"state_dict": state, "config": config, "class_names": ["a", "b", "c"]}, "old.ckpt")
    assert torch.equal(loaded.backbone.stem[6].weight, model.backbone.stem[6].weight)


def test_init_from_refuses_another_input_normalisation_and_names_other_settings(tiny_cityscapes, tmp_path):
    """Zoo weights expect ImageNet RGB: a run set up as the official CCNet (BGR caffe means, no std) would
    feed them other inputs, so it is refused unless asked; another align_corners is reported."""
    caffe = ["model.normalization.mean=[104.00698793,116.66876762,122.67891434]", "model.normalization.std=null",
             "model.normalization.channel_order=bgr", "model.align_corners=true"]
    model = build_segmentor(compose_run(tiny_cityscapes, tmp_path / "run", *CCNET_TINY, *caffe), 19)
    with pytest.raises(InitFromError, match=r"was trained on inputs normalised as ImageNet RGB, this run's "
                                            r"model.normalization is .*'channel_order': 'bgr'.* pass "
                                            r"model.init_from_other_normalization=true"):
        init_from(model, CCNET)
    report = init_from(model, CCNET, allow_other_normalization=True)
    assert "the file was trained with align_corners=False, this run uses model.align_corners=True" in report
    assert torch.equal(model.backbone.stem[0].weight, read_file(CCNET)["state_dict"]["backbone.stem.0.weight"])
