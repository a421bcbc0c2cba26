"""The public API: create_model / list_models with the config files' defaults, load_model of a published
file, and model.predict on every kind of image against a direct computation."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.position_model import PositionModel
from helpers.reference_passes import direct_probabilities
from omegaconf import OmegaConf
from PIL import Image

import segattn
from segattn.configs import CONFIG_DIR
from segattn.constants import IMAGENET_MEAN, IMAGENET_STD
from segattn.inference.images import ImageInputError
from segattn.checkpoints import read_file

ZOO_CCNET = Path(__file__).parent / "fixtures" / "mmseg-tiny" / "ccnet_r18-d8_512x1024_80k_cityscapes_tiny-0000aaaa.pth"


def test_list_models_names_the_config_files():
    assert segattn.list_models() == {"heads": ["ann", "ccnet", "danet", "dnl", "emanet", "fcn", "gcnet", "isanet", "nonlocal",
                                               "ocrnet", "psanet"],
                                     "backbones": ["resnet101", "resnet18", "resnet34", "resnet50", "timm"]}


def test_create_model_takes_the_config_files_defaults_and_routes_options():
    head_yaml = OmegaConf.load(CONFIG_DIR / "head" / "ccnet.yaml")
    model = segattn.create_model("ccnet", backbone="resnet18", num_classes=3)
    assert model.head.recurrence == head_yaml.recurrence == 2 and model.backbone.out_channels[-1] == 512  # ResNet-18
    assert model.head.cls[1].out_channels == 3 and model.head.bottleneck[0].out_channels == head_yaml.channels
    assert model.class_names == ["class_0", "class_1", "class_2"] and model.training
    changed = segattn.create_model("ccnet", backbone="resnet18", num_classes=3, recurrence=1, channels=32,
                                   output_stride=16, aux_weight=0, align_corners=True, class_names=["a", "b", "c"])
    assert changed.head.recurrence == 1 and changed.head.bottleneck[0].out_channels == 32
    assert changed.aux_head is None and changed.align_corners and changed.class_names == ["a", "b", "c"]
    with torch.no_grad():  # output stride 16: 64 / 16 = 4 feature rows
        assert changed.backbone(torch.zeros(1, 3, 64, 64))[-1].shape[-1] == 4


def test_create_model_bad_names_and_options_are_one_clear_message():
    with pytest.raises(ValueError, match=r"unknown head 'pspnet': expected one of \['ann', 'ccnet', 'danet', 'dnl', 'emanet', 'fcn', 'gcnet', 'isanet', 'nonlocal', 'ocrnet', 'psanet'\]"):
        segattn.create_model("pspnet")
    with pytest.raises(ValueError, match=r"option 'recurence' is ambiguous or unknown \(no such key\); expected one of"):
        segattn.create_model("ccnet", backbone="resnet18", recurence=1)


def test_load_model_reads_a_published_file_through_the_converter():
    model = segattn.load_model(ZOO_CCNET)
    assert not model.training and model.class_names[0] == "road" and len(model.palette) == 19
    assert model.align_corners is False and model.normalization["channel_order"] == "rgb"


def test_load_model_of_a_file_that_is_no_checkpoint_says_what_it_is_not(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"is neither a segattn checkpoint \(state_dict, config, class_names\) nor a release "
                                         r"segattn-convert reads: unknown checkpoint layout \(first keys: weights\); expected an mmseg zoo"):
        segattn.load_model(tmp_path / "other.pth")


def _normalised(rgb: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255
    return (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def test_predict_takes_arrays_pil_paths_and_tensors_and_equals_a_direct_computation(tmp_path):
    from segattn.inference.predict import predict

    rgb = np.random.default_rng(0).integers(0, 256, (21, 34, 3), dtype=np.uint8)
    model = PositionModel().eval()
    ids, probs = predict(model, rgb, return_probabilities=True)
    expected = model(_normalised(rgb)).softmax(1)[0]
    torch.testing.assert_close(probs, expected)
    assert ids.shape == (21, 34) and torch.equal(ids, expected.argmax(0)) and len(ids.unique()) == 3
    Image.fromarray(rgb).save(tmp_path / "image.png")
    for same in (Image.fromarray(rgb), tmp_path / "image.png", str(tmp_path / "image.png"),
                 torch.from_numpy(rgb).permute(2, 0, 1).float() / 255):
        assert torch.equal(predict(model, same), ids)
    with_alpha = np.concatenate([rgb, np.full((21, 34, 1), 7, np.uint8)], -1)
    assert torch.equal(predict(model, with_alpha), ids)  # alpha dropped
    grey = rgb[..., 0]
    assert torch.equal(predict(model, grey), predict(model, np.repeat(grey[..., None], 3, -1)))


def test_model_predict_uses_the_evaluation_passes():
    model = segattn.load_model(ZOO_CCNET)
    model.test_pipeline = None  # the passes alone: no resize
    rgb = np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    ids, probs = model.predict(rgb, mode="slide", crop_size=(32, 32), stride=(16, 16), scales=(0.75, 1.0), flip=True,
                               return_probabilities=True)
    plan = [((30, 42), (32, 42), [0], [0, 10]), ((40, 56), (40, 56), [0, 8], [0, 16, 24])]  # scales 0.75, 1
    expected = direct_probabilities(model, _normalised(rgb), (32, 32), plan, (40, 56), 19)
    torch.testing.assert_close(probs, expected[0], rtol=1e-5, atol=1e-6)
    assert torch.equal(ids, probs.argmax(0))


def test_model_predict_follows_the_checkpoints_test_pipeline_unless_arguments_say_otherwise():
    model = segattn.load_model(ZOO_CCNET)
    assert model.test_pipeline["val_transform"]["resize_scale"] == [2048, 1024]  # mmseg's Cityscapes test settings
    assert model.test_pipeline["eval"]["mode"] == "whole"
    model.test_pipeline = {"val_transform": {"resize_scale": [64, 48]},
                           "eval": {"mode": "slide", "crop_size": [32, 32], "stride": [16, 16]}}
    rgb = np.random.default_rng(2).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    _, probs = model.predict(rgb, flip=True, return_probabilities=True)
    # keep-ratio factor min(64 / 56, 48 / 40) = 8 / 7: 56 x 40 -> 64 x 46 (int(45.71 + 0.5)); windows worked out by hand
    resized = cv2.resize(rgb, (64, 46), interpolation=cv2.INTER_LINEAR)
    expected = direct_probabilities(model, _normalised(resized), (32, 32), [((46, 64), (46, 64), [0, 14], [0, 16, 32])],
                                    (40, 56), 19)
    torch.testing.assert_close(probs, expected[0], rtol=1e-5, atol=1e-6)
    model.test_pipeline["eval"]["mode"] = "whole"  # an argument overrides the pipeline
    torch.testing.assert_close(model.predict(rgb, mode="slide", flip=True, return_probabilities=True)[1], probs)
    assert not torch.allclose(model.predict(rgb, flip=True, return_probabilities=True)[1], probs, atol=1e-3)


@pytest.mark.parametrize("image, message", [
    ("missing.png", r"missing.png: no such image file"),
    ("not_an_image.png", r"cannot decode image .*not_an_image.png \(not an image file, or corrupt\)"),
    (np.zeros((4, 4, 2), np.uint8), r"expected an H x W x 3 image \(1 or 4 channels are converted\), found shape \(4, 4, 2\)"),
    (np.zeros((4, 4, 3), np.float32), r"expected dtype uint8 \(0..255\), found float32"),
    (torch.zeros(2, 3, 4, 4), r"expected float 3 x H x W or 1 x 3 x H x W in \[0, 1\], found torch.float32 of shape \(2, 3, 4, 4\)"),
    (torch.full((3, 4, 4), 255.0), r"image tensor: expected values in \[0, 1\], found \[255, 255\]; divide 0-255 images by 255"),
    (torch.full((3, 4, 4), float("nan")), r"image tensor: expected values in \[0, 1\], found \[nan, nan\]"),
    ("rgb-order", r"channel_order must be one of \['rgb', 'bgr'\], got 'RGB'"),
    ([1, 2], r"expected a uint8 array, a PIL image, a path or a float tensor, found list"),
])
def test_bad_images_are_one_clear_message(image, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not_an_image.png").write_text("hello")
    order = "rgb"
    if isinstance(image, str) and image == "rgb-order":
        image, order = np.zeros((4, 4, 3), np.uint8), "RGB"
    with pytest.raises(ImageInputError, match=message):
        segattn.inference.predict(PositionModel().eval(), image, channel_order=order)


def test_predict_reads_bgr_arrays_and_tensors_when_told():
    from segattn.inference.predict import predict

    rgb = np.random.default_rng(3).integers(0, 256, (21, 34, 3), dtype=np.uint8)
    model = PositionModel().eval()
    ids, probs = predict(model, rgb, return_probabilities=True)
    bgr = np.ascontiguousarray(rgb[..., ::-1])  # as cv2.imread gives
    torch.testing.assert_close(predict(model, bgr, channel_order="bgr", return_probabilities=True)[1], probs)
    bgr_tensor = torch.from_numpy(bgr).permute(2, 0, 1).float() / 255
    assert torch.equal(predict(model, bgr_tensor, channel_order="bgr"), ids)
    assert not torch.allclose(predict(model, bgr, return_probabilities=True)[1], probs)  # read as RGB: other input


def test_predict_refuses_a_model_in_training_mode():
    with pytest.raises(ValueError, match=r"model is in training mode; call model.eval\(\) first"):
        segattn.create_model("fcn", backbone="resnet18", num_classes=2).predict(np.zeros((8, 8, 3), np.uint8))


def test_models_build_and_load_without_hydra():
    import subprocess
    import sys

    code = ("import sys; sys.modules['hydra'] = None\n"  # any import of Hydra fails
            "import segattn\n"
            "segattn.create_model('danet', backbone='resnet18', num_classes=3, channels=16)\n"
            f"print(segattn.load_model({str(ZOO_CCNET)!r}).class_names[0])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "road", done.stderr[-2000:]


def test_load_model_of_a_damaged_published_file_names_the_layout_it_looks_like(tmp_path):
    data = read_file(ZOO_CCNET)
    del data["state_dict"]["decode_head.conv_seg.weight"]
    torch.save(data, tmp_path / "damaged.pth")
    with pytest.raises(ValueError, match=r"nor a release segattn-convert reads: .*damaged.pth looks like the mmseg layout, "
                                         r"but it has no decode_head.conv_seg.weight"):
        segattn.load_model(tmp_path / "damaged.pth")
