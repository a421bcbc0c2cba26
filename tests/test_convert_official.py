"""Official CCNet and DANet layouts: state dicts spelled with the releases' key names and shapes load strictly,
and the behaviours that differ from segattn's defaults (LeakyReLU, InPlaceABN scale, ceil_mode, BGR input,
dilations, multi-grid) are those of the releases."""
import pytest
import torch
import torch.nn.functional as F

from segattn.constants import CAFFE_BGR_MEAN, IMAGENET_MEAN, IMAGENET_STD
from segattn.convert import convert_checkpoint
from segattn.models.build import build_segmentor

K = 19  # Cityscapes classes
STEM, BASE = 16, 8  # reduced widths; the key names and the shape pattern are the releases'


class Tensors(dict):
    """A state dict under construction with random values (BN variances positive)."""

    def __init__(self, seed: int):
        super().__init__()
        self.gen = torch.Generator().manual_seed(seed)

    def conv(self, key: str, cout: int, cin: int, k: int, bias: bool = False):
        self[f"{key}.weight"] = torch.randn(cout, cin, k, k, generator=self.gen) * (2 / (cin * k * k)) ** 0.5
        if bias:
            self[f"{key}.bias"] = torch.randn(cout, generator=self.gen) * 0.1

    def bn(self, key: str, c: int):
        self[f"{key}.weight"] = torch.randn(c, generator=self.gen)  # signs included: InPlaceABN takes |w|
        self[f"{key}.bias"] = torch.randn(c, generator=self.gen) * 0.1
        self[f"{key}.running_mean"] = torch.randn(c, generator=self.gen) * 0.1
        self[f"{key}.running_var"] = torch.rand(c, generator=self.gen) + 0.5

    def resnet50_layers(self, prefix: str, inplanes: int):
        """Bottleneck layers [3, 4, 6, 3]: conv1 1x1, conv2 3x3, conv3 1x1 (x4), downsample.0/1 in block 0."""
        for stage, blocks in enumerate((3, 4, 6, 3)):
            planes = BASE * 2**stage
            for i in range(blocks):
                key = f"{prefix}layer{stage + 1}.{i}"
                cin = inplanes if i == 0 else planes * 4
                self.conv(f"{key}.conv1", planes, cin, 1), self.bn(f"{key}.bn1", planes)
                self.conv(f"{key}.conv2", planes, planes, 3), self.bn(f"{key}.bn2", planes)
                self.conv(f"{key}.conv3", planes * 4, planes, 1), self.bn(f"{key}.bn3", planes * 4)
                if i == 0:
                    self.conv(f"{key}.downsample.0", planes * 4, cin, 1), self.bn(f"{key}.downsample.1", planes * 4)
            inplanes = planes * 4


def official_ccnet() -> Tensors:
    """networks/ccnet.py: conv1..bn3 stem, layers, head (RCCAModule, inter = in // 4), dsn on layer3."""
    t = Tensors(0)
    half = STEM // 2
    t.conv("conv1", half, 3, 3), t.bn("bn1", half)
    t.conv("conv2", half, half, 3), t.bn("bn2", half)
    t.conv("conv3", STEM, half, 3), t.bn("bn3", STEM)
    t.resnet50_layers("", STEM)
    c4, c3, inter, out = BASE * 32, BASE * 16, BASE * 8, 16
    t.conv("head.conva.0", inter, c4, 3), t.bn("head.conva.1", inter)
    for name, cout in (("query_conv", inter // 8), ("key_conv", inter // 8), ("value_conv", inter)):
        t.conv(f"head.cca.{name}", cout, inter, 1, bias=True)
    t["head.cca.gamma"] = torch.tensor([0.5])
    t.conv("head.convb.0", inter, inter, 3), t.bn("head.convb.1", inter)
    t.conv("head.bottleneck.0", out, c4 + inter, 3), t.bn("head.bottleneck.1", out)
    t.conv("head.bottleneck.3", K, out, 1, bias=True)
    t.conv("dsn.0", 8, c3, 3, bias=True), t.bn("dsn.1", 8)
    t.conv("dsn.3", K, 8, 1, bias=True)
    return t


def official_danet() -> Tensors:
    """encoding/models/sseg/danet.py: ``pretrained.`` deep-stem ResNet, head conv5a .. conv8 (inter = in // 4)."""
    t = Tensors(1)
    half = STEM // 2
    t.conv("pretrained.conv1.0", half, 3, 3), t.bn("pretrained.conv1.1", half)
    t.conv("pretrained.conv1.3", half, half, 3), t.bn("pretrained.conv1.4", half)
    t.conv("pretrained.conv1.6", STEM, half, 3), t.bn("pretrained.bn1", STEM)
    t.resnet50_layers("pretrained.", STEM)
    c4, inter = BASE * 32, BASE * 8
    for branch in ("conv5a", "conv5c"):
        t.conv(f"head.{branch}.0", inter, c4, 3), t.bn(f"head.{branch}.1", inter)
    for branch in ("conv51", "conv52"):
        t.conv(f"head.{branch}.0", inter, inter, 3), t.bn(f"head.{branch}.1", inter)
    for name, cout in (("query_conv", inter // 8), ("key_conv", inter // 8), ("value_conv", inter)):
        t.conv(f"head.sa.{name}", cout, inter, 1, bias=True)
    t["head.sa.gamma"], t["head.sc.gamma"] = torch.tensor([0.5]), torch.tensor([0.3])
    for name in ("conv6", "conv7", "conv8"):
        t.conv(f"head.{name}.1", K, inter, 1, bias=True)
    return t


@pytest.fixture
def ccnet_model(tmp_path):
    source = official_ccnet()
    path = tmp_path / "ccnet_cityscapes.pth"
    torch.save({f"module.{k}": v for k, v in source.items()}, path)  # saved from DistributedDataParallel
    ckpt, _ = convert_checkpoint(path)
    model = build_segmentor(ckpt["config"], K)
    model.load_state_dict({k[len("model."):]: v for k, v in ckpt["state_dict"].items()})
    return source, ckpt, model.eval()


def test_official_ccnet_loads_strictly_with_its_settings(ccnet_model):
    source, ckpt, model = ccnet_model
    assert ckpt["converted_from"]["format"] == "ccnet" and ckpt["config"]["model"]["align_corners"] is True
    head_act, aux_act = model.head.conva[2], model.aux_head.convs[0][2]
    assert isinstance(head_act, torch.nn.LeakyReLU) and head_act.negative_slope == 0.01
    assert isinstance(aux_act, torch.nn.LeakyReLU) and aux_act.negative_slope == 0.01
    assert isinstance(model.backbone.layer1[0].relu, torch.nn.ReLU)  # backbone ABN: identity, then ReLU
    # InPlaceABN scales by |w| + eps
    assert torch.equal(model.backbone.stem[1].weight, source["bn1.weight"].abs() + 1e-5)
    assert torch.equal(model.head.cls[1].weight, source["head.bottleneck.3.weight"])
    assert all(block.conv2.dilation == (2, 2) for block in model.backbone.layer3)  # no contraction
    assert all(block.conv2.dilation == (4, 4) for block in model.backbone.layer4)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 45)).shape == (1, K, 33, 45)


def test_official_ccnet_ceil_mode_stem(ccnet_model):
    """1024x2048 input: 512x1024 after the stride-2 conv, 257x513 after the ceil-mode max-pool."""
    _, _, model = ccnet_model
    with torch.no_grad():
        assert model.backbone.stem(torch.zeros(1, 3, 1024, 2048)).shape[-2:] == (257, 513)


def test_official_ccnet_reads_bgr_caffe_input(ccnet_model):
    _, _, model = ccnet_model
    pixels = torch.randint(0, 256, (1, 3, 5, 7)).double()  # RGB, 0..255
    pipeline = (pixels / 255 - torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / \
        torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    expected = pixels[:, [2, 1, 0]] - torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(model.normalize(pipeline), expected, atol=1e-9)


def test_official_ccnet_dsn_conv_bias_is_folded_exactly(ccnet_model):
    """aux conv + BN equals the release's conv(bias) -> InPlaceABN(|w| + eps) -> leaky, computed from its tensors."""
    source, _, model = ccnet_model
    x = torch.randn(1, BASE * 16, 6, 7)
    y = F.conv2d(x, source["dsn.0.weight"], source["dsn.0.bias"], padding=1)
    y = F.batch_norm(y, source["dsn.1.running_mean"], source["dsn.1.running_var"],
                     source["dsn.1.weight"].abs() + 1e-5, source["dsn.1.bias"], eps=1e-5)
    with torch.no_grad():
        assert torch.allclose(model.aux_head.convs(x), F.leaky_relu(y, 0.01), atol=1e-5)


def test_official_danet_loads_strictly_with_multi_grid(tmp_path):
    source = official_danet()
    path = tmp_path / "danet101_cityscapes.pth"
    torch.save({"state_dict": dict(source)}, path)
    ckpt, summary = convert_checkpoint(path)
    assert ckpt["converted_from"]["format"] == "danet" and "multi-grid" in summary
    model = build_segmentor(ckpt["config"], K).eval()
    model.load_state_dict({k[len("model."):]: v for k, v in ckpt["state_dict"].items()})
    assert [b.conv2.dilation[0] for b in model.backbone.layer4] == [4, 8, 16]
    assert [b.conv2.dilation[0] for b in model.backbone.layer3] == [1, 2, 2, 2, 2, 2]  # Encoding's contraction
    assert model.align_corners and model.normalize.identity and model.aux_head is None
    assert torch.equal(model.backbone.stem[7].weight, source["pretrained.bn1.weight"])  # plain BN: as is
    assert torch.equal(model.head.sa.gamma, source["head.sa.gamma"])
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 45)).shape == (1, K, 33, 45)


def test_older_danet_release_with_the_imagenet_classifier(tmp_path):
    source = official_danet()
    source["pretrained.fc.weight"], source["pretrained.fc.bias"] = torch.zeros(1000, BASE * 32), torch.zeros(1000)
    path = tmp_path / "DANet101_cityscapes.pth.tar"
    torch.save({"epoch": 240, "state_dict": dict(source), "best_pred": 0.8}, path)
    ckpt, summary = convert_checkpoint(path, dataset="cityscapes")
    assert "pretrained.fc.weight, pretrained.fc.bias) is not part of the model: left out" in summary
    assert not any(".fc." in k for k in ckpt["state_dict"])


def test_explicit_format_that_does_not_match_is_refused(tmp_path):
    path = tmp_path / "danet.pth"
    torch.save(dict(official_danet()), path)
    from segattn.convert import ConversionError

    with pytest.raises(ConversionError, match="is not in the ccnet layout"):
        convert_checkpoint(path, fmt="ccnet", dataset="cityscapes")
