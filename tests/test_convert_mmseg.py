"""mmseg model-zoo files convert to segattn checkpoints that reproduce mmseg's own logits (float64)."""
import json
from pathlib import Path

import pytest
import torch

import segattn
from segattn.cli.convert import main as convert_main
from segattn.convert import ConversionError, convert_checkpoint
from segattn.checkpoints import read_file

FIXTURES = Path(__file__).parent / "fixtures" / "mmseg-tiny"
STEMS = sorted(p.stem for p in FIXTURES.glob("*.pth"))


def _reference(stem: str):
    return (torch.load(FIXTURES / f"{stem}.input.pt"), torch.load(FIXTURES / f"{stem}.logits.pt"),
            json.loads((FIXTURES / f"{stem}.json").read_text()))


def _rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("stem", STEMS, ids=lambda s: s.split("_")[0])
def test_converted_zoo_model_reproduces_mmseg_logits(stem, tmp_path, capsys):
    x, expected, info = _reference(stem)
    convert_main([str(FIXTURES / f"{stem}.pth"), str(tmp_path / "model.ckpt")])
    assert f"{info['head']} head" in capsys.readouterr().out
    model = segattn.load_model(tmp_path / "model.ckpt").double()
    assert not model.training and model.align_corners is info["align_corners"]
    assert len(model.class_names) == info["num_classes"] and model.palette is not None
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == expected.shape
    assert _rel_error(logits, expected) < 1e-6


def test_layout_matters_contract_dilation_and_align_corners():
    """The reference is sensitive: plain dilation or the other align_corners changes the logits."""
    from segattn.models.build import build_segmentor
    from segattn.models.checkpoint import build_model

    stem = next(s for s in STEMS if s.startswith("danet"))
    x, expected, _ = _reference(stem)
    ckpt, _ = convert_checkpoint(FIXTURES / f"{stem}.pth")
    for change in ({"backbone": {"contract_dilation": False}}, {"model": {"align_corners": False}}):
        config = {k: dict(v) for k, v in ckpt["config"].items()}
        for section, values in change.items():
            config[section].update(values)
        model = build_model({**ckpt, "config": config}, "edited").double()
        with torch.no_grad():
            assert _rel_error(model(x), expected) > 1e-3
    assert build_segmentor(ckpt["config"], 19).backbone.layer3[0].conv2.dilation == (1, 1)


def test_older_zoo_files_with_gamma_parameters_convert_the_same(tmp_path):
    """mmseg before mmcv's ``Scale`` stored attention gammas as ``...gamma`` of shape (1,)."""
    stem = next(s for s in STEMS if s.startswith("danet"))
    x, expected, _ = _reference(stem)

    def older(data):
        state = data["state_dict"]
        for key in [k for k in state if k.endswith("gamma.scale")]:
            state[key[: -len(".scale")]] = state.pop(key).reshape(1)

    convert_main([str(_edited_copy(tmp_path, stem, older, f"{stem}.pth")), str(tmp_path / "old.ckpt")])
    with torch.no_grad():
        assert _rel_error(segattn.load_model(tmp_path / "old.ckpt").double()(x), expected) < 1e-6


def test_align_corners_flag_and_dataset_override(tmp_path):
    stem = next(s for s in STEMS if s.startswith("ccnet"))
    ckpt, summary = convert_checkpoint(FIXTURES / f"{stem}.pth", align_corners=True)
    assert ckpt["config"]["model"]["align_corners"] is True and "align_corners=True" in summary
    assert ckpt["config"]["data"]["dataset"]["_target_"].endswith("CityscapesDataset")
    assert ckpt["class_names"][0] == "road" and ckpt["converted_from"]["format"] == "mmseg"


def _edited_copy(tmp_path: Path, stem: str, edit, name: str) -> Path:
    data = read_file(FIXTURES / f"{stem}.pth")
    edit(data)
    path = tmp_path / name
    torch.save(data, path)
    return path


def test_bad_sources_fail_with_one_clear_message_and_write_nothing(tmp_path, capsys):
    stem = next(s for s in STEMS if s.startswith("ccnet"))
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((FIXTURES / f"{stem}.pth").read_bytes()[:5000])
    unknown = tmp_path / "unknown.pth"
    torch.save({"encoder.block1.weight": torch.zeros(2), "decoder.out.bias": torch.zeros(1)}, unknown)
    reshaped = _edited_copy(tmp_path, stem, lambda d: d["state_dict"].update(
        {"decode_head.conv_cat.conv.weight": torch.zeros(16, 81, 3, 3)}), "reshaped.pth")
    psp = _edited_copy(tmp_path, stem, lambda d: [d["state_dict"].pop(k) for k in list(d["state_dict"])
                                                  if ".cca." in k] and d["state_dict"].update(
        {"decode_head.psp_modules.0.1.conv.weight": torch.zeros(4, 64, 1, 1)}), "psp.pth")
    leftover = _edited_copy(tmp_path, stem, lambda d: d["state_dict"].update({"neck.lateral.weight": torch.zeros(1)}),
                            "leftover.pth")
    segattn_ckpt = tmp_path / "already.ckpt"
    convert_main([str(FIXTURES / f"{stem}.pth"), str(segattn_ckpt)])
    cases = [
        (junk, "is not a PyTorch checkpoint"),
        (truncated, "is truncated or damaged"),
        (unknown, "unknown checkpoint layout \\(first keys: encoder.block1.weight, decoder.out.bias\\)"),
        (reshaped, r"shape mismatch decode_head.conv_cat.conv.weight -> head.bottleneck.0.weight: file \(16, 81, 3, 3\) vs model \(16, 80, 3, 3\)"),
        (psp, r"decode head is PSPHead, which segattn does not have; supported mmseg heads: CCHead \(head=ccnet\)"),
        (leftover, r"1 tensors have no place .* \(first: neck.lateral.weight\)"),
        (segattn_ckpt, "is a segattn checkpoint already"),
        (tmp_path / "missing.pth", "no such file"),
    ]
    for source, message in cases:
        dst = tmp_path / f"out_{source.stem}.ckpt"
        with pytest.raises(SystemExit, match=f"^segattn-convert: error: .*{message}"):
            convert_main([str(source), str(dst)])
        assert not dst.exists() and not list(tmp_path.glob(f".out_{source.stem}*"))


def test_class_names_need_meta_or_dataset(tmp_path):
    stem = next(s for s in STEMS if s.startswith("fcn"))
    renamed = _edited_copy(tmp_path, stem, lambda d: d.pop("meta"), "fcn_model.pth")
    with pytest.raises(ConversionError, match="pass --dataset cityscapes or ade20k or "):
        convert_checkpoint(renamed)
    newer = _edited_copy(tmp_path, stem, lambda d: d.update(meta={"dataset_meta": {
        "classes": [f"c{i}" for i in range(150)], "palette": [[i, i, i] for i in range(150)]}}), "fcn_new.pth")
    ckpt, _ = convert_checkpoint(newer)  # mmseg 1.x names the classes in meta["dataset_meta"]
    assert ckpt["class_names"][149] == "c149" and ckpt["palette"][2] == [2, 2, 2]
    ckpt, _ = convert_checkpoint(renamed, dataset="ade20k")
    assert len(ckpt["class_names"]) == 150 and ckpt["class_names"][0] == "wall"
    with pytest.raises(ConversionError, match="classifier has 150 outputs but 19 class names"):
        convert_checkpoint(renamed, dataset="cityscapes")


MMSEG_0X_CONFIG = """norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    backbone=dict(type='ResNetV1c', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                  strides=(1, 2, 1, 1), norm_cfg=norm_cfg, contract_dilation=True),
    decode_head=dict(type='DAHead', in_channels=2048, channels=512, num_classes=19, norm_cfg=norm_cfg,
                     align_corners=True, loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)))
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
"""


def test_a_renamed_zoo_file_takes_its_settings_from_its_own_config_text(tmp_path):
    """A 769x769 model renamed ``model.pth``: the name no longer says align_corners=True or Cityscapes; the
    config text mmseg 0.x keeps in ``meta["config"]`` does (read as syntax, never run)."""
    stem = next(s for s in STEMS if s.startswith("danet"))
    x, expected, _ = _reference(stem)

    def renamed_meta(config):
        def edit(data):
            data["meta"] = {"config": config} if config else {}
        return edit

    bare = _edited_copy(tmp_path, stem, renamed_meta(None), "model.pth")
    with pytest.raises(ConversionError, match="pass --dataset cityscapes or ade20k or "):
        convert_checkpoint(bare)
    ckpt, summary = convert_checkpoint(bare, dataset="cityscapes")  # the name's rule: align_corners=False, wrong here
    assert ckpt["config"]["model"]["align_corners"] is False and "align_corners=False (mmseg's default" in summary
    described = _edited_copy(tmp_path, stem, renamed_meta(MMSEG_0X_CONFIG), "described.pth")
    ckpt, summary = convert_checkpoint(described)
    for note in ("dataset=cityscapes (the file's meta config)", "align_corners=True (the file's meta config)",
                 "output_stride=8 (the file's meta config)"):
        assert note in summary
    assert ckpt["class_names"][0] == "road" and ckpt["config"]["eval"]["mode"] == "slide"  # the 769x769 test pipeline
    from segattn.models.checkpoint import build_model

    with torch.no_grad():
        assert _rel_error(build_model(ckpt, "described").double()(x), expected) < 1e-6
    d16 = _edited_copy(tmp_path, stem, renamed_meta(MMSEG_0X_CONFIG.replace("dilations=(1, 1, 2, 4)", "dilations=(1, 1, 1, 2)")
                                                   .replace("strides=(1, 2, 1, 1)", "strides=(1, 2, 2, 1)")), "d16.pth")
    ckpt, summary = convert_checkpoint(d16)
    assert "output_stride=16 (the file's meta config)" in summary and ckpt["config"]["backbone"]["output_stride"] == 16
    hostile = _edited_copy(tmp_path, stem, renamed_meta("import os\nos.system('touch ran')\ndataset_type = 'ADE20KDataset'"),
                           "hostile.pth")
    _, summary = convert_checkpoint(hostile, dataset="cityscapes")  # the text is parsed, not executed
    assert not Path("ran").exists() and "dataset=cityscapes (given)" in summary
