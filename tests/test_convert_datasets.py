"""The converter knows the PASCAL / COCO-Stuff / LIP zoo datasets: names in file names, class names, test pipelines."""
from pathlib import Path

import pytest
import torch

from segattn.checkpoints import read_file
from segattn.convert import convert_checkpoint
from segattn.convert import build
from segattn.convert.release_settings import dataset_from_name

FIXTURES = Path(__file__).parent / "fixtures" / "mmseg-tiny"

ZOO_NAMES = {  # file names of mmseg's zoo (configs/*/README.md links)
    "danet_r50-d8_512x512_20k_voc12aug_20200618_070026-9e9e3ab3.pth": "voc12aug",
    "ccnet_r101-d8_512x512_40k_voc12aug_20200613_035719-3b4f7bc2.pth": "voc12aug",
    "danet_r101-d8_512x1024_40k_cityscapes_20200605_191324-888e3d4f.pth": "cityscapes",
    "nonlocal_r50-d8_512x512_160k_ade20k_20200616_005410-baef45e3.pth": "ade20k",
    "deeplabv3_r50-d8_512x512_4x4_20k_coco-stuff10k_20210821_043025-b35f789d.pth": "coco-stuff10k",
    "deeplabv3_r50-d8_512x512_4x4_80k_coco-stuff164k_20210709_163016-88675c24.pth": "coco-stuff164k",
    "fcn_r101-d8_480x480_40k_pascal_context_20200911_212030-ab09a9c8.pth": "pascal_context",
    "fcn_r101-d8_480x480_80k_pascal_context_59_20210416_114554-4bc9a1a8.pth": "pascal_context_59",
}


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_dataset_from_zoo_file_name(name):
    assert dataset_from_name(name) == ZOO_NAMES[name]


def test_voc12aug_class_names_and_test_pipeline():
    names, palette = build.dataset_info("voc12aug")
    assert len(names) == 21 and names[15] == "person" and palette[15] == (192, 128, 128)
    test, val = build.test_pipeline("mmseg", "voc12aug", align_corners=False)
    assert test["mode"] == "whole" and val["resize_scale"] == [2048, 512]


@pytest.mark.parametrize("name, n, first", [("pascal_context", 60, "background"), ("pascal_context_59", 59, "aeroplane")])
def test_context_class_names_and_test_pipeline(name, n, first):
    names, palette = build.dataset_info(name)
    assert len(names) == len(palette) == n and names[0] == first and names[-1] == "wood"
    test, val = build.test_pipeline("mmseg", name, align_corners=False)
    assert (test["mode"], test["crop_size"], test["stride"]) == ("slide", [480, 480], [320, 320])
    assert val["resize_scale"] == [520, 520]


def test_lip_class_names_from_the_file_name():
    assert dataset_from_name("ccnet_r101_473x473_lip-0000aaaa.pth") == "lip"
    names, _ = build.dataset_info("lip")
    assert len(names) == 20 and names[19] == "Right-shoe"


def _with_classes(tmp_path: Path, num_classes: int, name: str) -> Path:
    stem = next(p.stem for p in FIXTURES.glob("danet*.pth"))
    data = read_file(FIXTURES / f"{stem}.pth")
    data.pop("meta", None)
    sd = data["state_dict"]
    for key in [k for k in sd if "conv_seg" in k]:
        sd[key] = torch.zeros((num_classes, *sd[key].shape[1:]))
    torch.save(data, tmp_path / name)
    return tmp_path / name


def test_voc12aug_zoo_file_converts_with_class_names_and_data_group(tmp_path):
    src = _with_classes(tmp_path, 21, "danet_r50-d8_512x512_20k_voc12aug_20200618_070026-9e9e3ab3.pth")
    ckpt, summary = convert_checkpoint(src)
    assert "dataset=voc12aug (the file name)" in summary
    assert ckpt["class_names"][20] == "tvmonitor" and ckpt["palette"][1] == [128, 0, 0]
    cfg = ckpt["config"]
    assert cfg["data"]["dataset"]["_target_"] == "segattn.data.voc.VOC12AugDataset"
    assert cfg["data"]["val_transform"]["resize_scale"] == [2048, 512] and cfg["eval"]["mode"] == "whole"


def test_coco_stuff_zoo_file_converts_with_its_data_group(tmp_path):
    src = _with_classes(tmp_path, 171, "danet_r50-d8_512x512_4x4_20k_coco-stuff164k-0000aaaa.pth")
    ckpt, summary = convert_checkpoint(src)
    assert "dataset=coco-stuff164k (the file name)" in summary and ckpt["class_names"][170] == "wood"
    assert ckpt["config"]["data"]["dataset"]["_target_"].endswith("COCOStuff164kDataset")
    assert ckpt["config"]["eval"]["mode"] == "whole"


def test_context_59_zoo_file_converts_with_class_names_and_slide_test(tmp_path):
    src = _with_classes(tmp_path, 59, "danet_r101-d8_480x480_80k_pascal_context_59_20210416-0000aaaa.pth")
    ckpt, summary = convert_checkpoint(src)
    assert "dataset=pascal_context_59 (the file name)" in summary and ckpt["class_names"][0] == "aeroplane"
    cfg = ckpt["config"]
    assert cfg["data"]["dataset"]["_target_"].endswith("PascalContext59Dataset")
    assert cfg["eval"]["stride"] == [320, 320] and cfg["data"]["val_transform"]["resize_scale"] == [520, 520]


@pytest.mark.parametrize("dataset_type, name", [("PascalVOCDataset", "voc12aug"), ("PascalContextDataset", "pascal_context"),
                                                ("PascalContextDataset59", "pascal_context_59"), ("LIPDataset", "lip")])
def test_dataset_from_the_files_own_config_text(dataset_type, name):
    from segattn.convert.release_settings import described_settings

    assert described_settings({"config": f"dataset_type = '{dataset_type}'\n"}) == {"dataset": name}
