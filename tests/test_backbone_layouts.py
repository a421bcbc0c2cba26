"""Backbone layouts: stems, widths, dilation schedules, init of new layers, ImageNet files of every layout."""
import pytest
import torch
import torchvision
from torch import nn

from segattn.models.backbone import ResNetBackbone
from segattn.models.resnet_layout import stage_dilations


def _dilations(layer):
    return [(b.conv2 if hasattr(b, "conv3") else b.conv1).dilation[0] for b in layer]


def test_v1c_stem_is_flat_32_32_64_and_keeps_strides():
    net = ResNetBackbone(50, stem="v1c").eval()
    convs = {k: v.shape for k, v in net.state_dict().items() if k.startswith("stem.") and k.endswith("weight")}
    assert convs == {"stem.0.weight": (32, 3, 3, 3), "stem.1.weight": (32,), "stem.3.weight": (32, 32, 3, 3),
                     "stem.4.weight": (32,), "stem.6.weight": (64, 32, 3, 3), "stem.7.weight": (64,)}
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, 64, 96))
    assert [f.shape[-2:] for f in feats] == [(16, 24), (8, 12), (8, 12), (8, 12)]


def test_ccnet_stem_widths_and_ceil_mode():
    net = ResNetBackbone(18, stem="ccnet", ceil_mode=True).eval()
    assert [m.out_channels for m in net.stem if isinstance(m, nn.Conv2d)] == [64, 64, 128]
    with torch.no_grad():
        assert net.stem(torch.zeros(1, 3, 66, 98)).shape[-2:] == (17, 25)  # 33x49 -> ceil((33-1)/2)+1
        assert ResNetBackbone(18, stem="ccnet").stem(torch.zeros(1, 3, 66, 98)).shape[-2:] == (17, 25)
        assert ResNetBackbone(18, stem="ccnet", ceil_mode=True).stem(torch.zeros(1, 3, 68, 100)).shape[-2:] == (18, 26)
        assert ResNetBackbone(18, stem="ccnet").stem(torch.zeros(1, 3, 68, 100)).shape[-2:] == (17, 25)


def test_custom_widths():
    net = ResNetBackbone(50, stem="v1c", stem_channels=16, base_channels=8)
    assert net.out_channels == [32, 64, 128, 256] and net.layer1[0].conv1.in_channels == 16


def test_contract_dilation_multi_grid_and_mmseg_basic_block():
    net = ResNetBackbone(101, contract_dilation=True, multi_grid=[4, 8, 16])
    assert _dilations(net.layer3) == [1] + [2] * 22 and _dilations(net.layer4) == [4, 8, 16]
    assert all(m.stride == (1, 1) for m in net.layer4.modules() if isinstance(m, nn.Conv2d))
    basic = ResNetBackbone(18, contract_dilation=True, dilate_basic_conv2=False)
    assert _dilations(basic.layer4) == [2, 4] and [b.conv2.dilation for b in basic.layer4] == [(1, 1), (1, 1)]
    assert [b.conv2.dilation for b in ResNetBackbone(18).layer4] == [(4, 4), (4, 4)]  # default: as before
    assert stage_dilations(16, [3, 4, 6, 3], contract_dilation=True) == [[1] * 3, [1] * 4, [1] * 6, [1, 2, 2]]
    with pytest.raises(ValueError, match="multi_grid needs a dilated layer4"):
        ResNetBackbone(18, output_stride=32, multi_grid=[1, 2])


def test_new_layers_get_torchvision_init():
    torch.manual_seed(0)
    net = ResNetBackbone(50, stem="v1c")
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)
    conv = net.stem[6]  # kaiming normal, fan_out = 64 * 9
    assert abs(conv.weight.std().item() / (2 / (64 * 9)) ** 0.5 - 1) < 0.1
    conv = net.layer3[0].conv2
    assert abs(conv.weight.std().item() / (2 / (conv.out_channels * 9)) ** 0.5 - 1) < 0.05


def _renamed(state: dict, names: dict) -> dict:
    out = {}
    for key, value in state.items():
        prefix = next((p for p in names if key.startswith(p)), None)
        out[names[prefix] + key[len(prefix):] if prefix else key] = value
    return out


@pytest.mark.parametrize("stem,names", [
    ("v1c", {}),  # open-mmlab resnet*_v1c: stem.* as segattn
    ("ccnet", {"stem.0.": "conv1.", "stem.1.": "bn1.", "stem.3.": "conv2.", "stem.4.": "bn2.",
               "stem.6.": "conv3.", "stem.7.": "bn3."}),  # MIT / CCNet resnet101-imagenet.pth
    ("ccnet", {"stem.0.": "conv1.0.", "stem.1.": "conv1.1.", "stem.3.": "conv1.3.", "stem.4.": "conv1.4.",
               "stem.6.": "conv1.6.", "stem.7.": "bn1."}),  # PyTorch-Encoding resnet101
], ids=["open-mmlab-v1c", "ccnet-mit", "pytorch-encoding"])
def test_imagenet_files_of_every_layout_load(tmp_path, stem, names):
    reference = ResNetBackbone(18, stem=stem)
    state = _renamed(reference.state_dict(), names)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save({"state_dict": state}, tmp_path / "imagenet.pth")
    net = ResNetBackbone(18, stem=stem, pretrained=str(tmp_path / "imagenet.pth"), attention="se")
    assert torch.equal(net.stem[6].weight, reference.stem[6].weight)
    assert torch.equal(net.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert torch.equal(net.layer4[1].bn2[0].running_var, reference.layer4[1].bn2.running_var)


def test_pretrained_stem_mismatch_and_offline_release_are_clear(tmp_path, monkeypatch):
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "tv.pth")
    with pytest.raises(RuntimeError, match="has the torchvision stem .* set backbone.stem=torchvision"):
        ResNetBackbone(18, stem="v1c", pretrained=str(tmp_path / "tv.pth"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match=f"pretrained=/path/to/resnet50_v1c-2cccc1ad.pth, or place it in {tmp_path}/hub/checkpoints"):
        ResNetBackbone(50, stem="v1c", pretrained="imagenet")
    with pytest.raises(ValueError, match="no published ImageNet file for the ccnet stem at depth 18"):
        ResNetBackbone(18, stem="ccnet", pretrained="imagenet")
    cached = tmp_path / "hub" / "checkpoints" / "resnet18_v1c-b5776b93.pth"
    cached.parent.mkdir(parents=True, exist_ok=True)  # the failed download made it
    reference = ResNetBackbone(18, stem="v1c")
    torch.save(reference.state_dict(), cached)
    net = ResNetBackbone(18, stem="v1c", pretrained="imagenet")  # found in the cache: no download
    assert torch.equal(net.stem[0].weight, reference.stem[0].weight)
