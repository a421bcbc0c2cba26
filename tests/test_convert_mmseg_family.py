"""mmseg zoo-format GCNet, DNL, EMANet, ISANet, OCRNet and ANN files convert to segattn models that give mmseg 1.2.2's own logits (float64)."""
import json
from pathlib import Path

import pytest
import torch

import segattn
from segattn.checkpoints import read_file
from segattn.convert import ConversionError, convert_checkpoint
from segattn.models.checkpoint import build_model

FIXTURES = Path(__file__).parent / "fixtures" / "mmseg-tiny-family"
HEADS = {"gcnet": "GCHead", "dnl": "DNLHead", "emanet": "EMAHead", "isanet": "ISAHead", "ocrnet": "OCRHead", "ann": "ANNHead"}  # head= name -> mmseg class
TINY_SETTINGS = {"ann": {"key_pool_scales": [1, 3]}}  # the fixture README's settings that the weights do not show
STEMS = {h: next(p.stem for p in FIXTURES.glob(f"{h}_*.pth")) for h in HEADS}


def _reference(stem: str):
    return (torch.load(FIXTURES / f"{stem}.input.pt"), torch.load(FIXTURES / f"{stem}.logits.pt"),
            json.loads((FIXTURES / f"{stem}.json").read_text()))


def _rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def _logits(ckpt: dict, x: torch.Tensor) -> torch.Tensor:
    model = build_model(ckpt, "converted").double()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_converted_zoo_model_reproduces_mmseg_logits(head):
    stem = STEMS[head]
    x, expected, info = _reference(stem)
    ckpt, summary = convert_checkpoint(FIXTURES / f"{stem}.pth")
    assert summary.startswith(f"mmseg: {head} head") and ckpt["config"]["head"]["_target_"].endswith(HEADS[head])
    model = segattn.load_model(FIXTURES / f"{stem}.pth").double()
    if head in TINY_SETTINGS:  # the zoo's setting (the converter's) differs from the tiny file's
        ckpt["config"]["head"].update(TINY_SETTINGS[head])
        model = build_model(ckpt, "converted").double().eval()
    assert not model.training and model.align_corners is info["align_corners"]
    assert len(model.class_names) == info["num_classes"]
    assert (model.aux_head is None) is (head == "ocrnet")  # mmseg's OCRNet has no auxiliary head
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == expected.shape
    assert _rel_error(logits, expected) < 1e-6


def test_the_reference_is_sensitive_to_each_heads_settings():
    """Settings the tensors do not show change the logits by well over the 1e-6 tolerance: the comparison above pins
    them (EM converges in few steps on the tiny input, so one EM stage instead of three moves the logits least)."""
    changes = {"gcnet": {"pooling_type": "avg"}, "dnl": {"temperature": 1.0}, "emanet": {"num_stages": 1},
               "isanet": {"down_factor": [4, 4]},
               "ann": {"key_pool_scales": [1, 2]}}
    for head, change in changes.items():
        x, expected, _ = _reference(STEMS[head])
        ckpt, _ = convert_checkpoint(FIXTURES / f"{STEMS[head]}.pth")
        ckpt["config"]["head"].update(change)
        if head == "gcnet":  # avg pooling has no conv_mask
            ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if "conv_mask" not in k}
        assert _rel_error(_logits(ckpt, x), expected) > 1e-5, head


def test_emanet_bases_come_from_the_file():
    stem = STEMS["emanet"]
    ckpt, _ = convert_checkpoint(FIXTURES / f"{stem}.pth")
    source = read_file(FIXTURES / f"{stem}.pth")["state_dict"]["decode_head.ema_module.bases"]
    assert torch.equal(ckpt["state_dict"]["model.head.ema_module.bases"], source)
    assert ckpt["config"]["head"]["num_bases"] == source.shape[2]



def test_gc_and_dnl_without_concat_input_are_refused_in_one_message(tmp_path):
    for head in ("gcnet", "dnl"):
        data = read_file(FIXTURES / f"{STEMS[head]}.pth")
        data["state_dict"] = {k: v for k, v in data["state_dict"].items() if ".conv_cat." not in k}
        path = tmp_path / f"{STEMS[head]}.pth"
        torch.save(data, path)
        with pytest.raises(ConversionError, match=f"{HEADS[head]} without concat_input is not supported"):
            convert_checkpoint(path)


def test_ocrnet_soft_region_head_is_part_of_inference_and_has_its_own_loss():
    stem = STEMS["ocrnet"]
    x, expected, _ = _reference(stem)
    model = segattn.load_model(FIXTURES / f"{stem}.pth").double()
    assert model.loss_weights == {"out": 1.0, "soft_region": 0.4}
    with torch.no_grad():
        outputs = model.forward_train(x)
        assert set(outputs) == {"out", "soft_region"} and outputs["soft_region"].shape == expected.shape
        assert _rel_error(outputs["out"], expected) < 1e-6
        model.head.soft_region.cls[1].bias.add_(1.0)  # a class-wise shift of the regions' logits leaves the softmax over
        assert _rel_error(model(x), expected) < 1e-6   # positions alone; a shift of one class's map does not:
        model.head.soft_region.cls[1].weight[0].mul_(3.0)
        assert _rel_error(model(x), expected) > 1e-5
