import pytest
import torch

from segattn.models.backbone import ResNetBackbone


@pytest.mark.parametrize("depth", [18, 34, 50, 101])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_feature_strides_and_channels(depth, output_stride):
    net = ResNetBackbone(depth, output_stride=output_stride).eval()
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, 64, 96))
    strides = [4, 8, 8, 8] if output_stride == 8 else [4, 8, 16, 16]
    expansion = 4 if depth >= 50 else 1
    for feat, stride, channels in zip(feats, strides, net.out_channels):
        assert feat.shape == (1, channels, 64 // stride, 96 // stride)
    assert net.out_channels == [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]


def test_dilation_applied_to_every_block_of_layer4():
    net = ResNetBackbone(18, output_stride=8)
    convs = [m for m in net.layer4.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert convs and all(c.dilation == (4, 4) and c.padding == (4, 4) and c.stride == (1, 1) for c in convs)
    convs = [m for m in net.layer3.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert all(c.dilation == (2, 2) for c in convs)


def test_deep_stem_has_three_convs_and_keeps_shapes():
    net = ResNetBackbone(50, deep_stem=True).eval()
    stem_convs = [m for m in net.stem.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in stem_convs] == [64, 64, 128]
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 32))[-1].shape == (1, 2048, 4, 4)


def test_local_pretrained_checkpoint_loads(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    net = ResNetBackbone(18, pretrained=str(tmp_path / "r18.pth"))
    assert torch.equal(net.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert torch.equal(net.stem[0].weight, reference.conv1.weight)


def test_pretrained_errors_are_clear(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="expected 'imagenet', null or a checkpoint file"):
        ResNetBackbone(18, pretrained=str(tmp_path / "missing.pth"))
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "other.pth")
    with pytest.raises(RuntimeError, match="does not fit a ResNet-18"):
        ResNetBackbone(18, pretrained=str(tmp_path / "other.pth"))
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError, match="backbone.pretrained=/path/to/resnet18"):
        ResNetBackbone(18, pretrained="imagenet")


def test_bad_depth_and_stride_list_valid_values():
    with pytest.raises(ValueError, match=r"\[18, 34, 50, 101\]"):
        ResNetBackbone(20)
    with pytest.raises(ValueError, match="output_stride"):
        ResNetBackbone(18, output_stride=4)
