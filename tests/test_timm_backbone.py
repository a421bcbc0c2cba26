"""timm backbones (optional extra): features at output stride 8/16, local ImageNet weights, clear errors."""
import pytest
import torch

timm = pytest.importorskip("timm")

from segattn.models.timm_backbone import TimmBackbone  # noqa: E402


@pytest.mark.parametrize("output_stride,strides", [(8, [4, 8, 8, 8]), (16, [4, 8, 16, 16])])
def test_features_only_at_output_stride(output_stride, strides):
    net = TimmBackbone("resnet10t", output_stride=output_stride).eval()
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == net.out_channels == [64, 128, 256, 512]
    assert [f.shape[-2:] for f in feats] == [(64 // s, 96 // s) for s in strides]


def test_local_imagenet_file_and_segmentor(tmp_path):
    from segattn.models.build import build_segmentor

    reference = timm.create_model("resnet10t")
    torch.save(reference.state_dict(), tmp_path / "resnet10t.pth")
    config = {"backbone": {"_target_": "segattn.models.timm_backbone.TimmBackbone", "name": "resnet10t",
                           "output_stride": 8, "pretrained": str(tmp_path / "resnet10t.pth")},
              "head": {"_target_": "segattn.models.heads.fcn.FCNHead", "_partial_": True, "channels": 16},
              "model": {"aux_channels": 8}}
    model = build_segmentor(config, 5).eval()
    assert torch.equal(model.backbone.body.layer4[0].conv2.weight, reference.layer4[0].conv2.weight)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 40, 48)).shape == (1, 5, 40, 48)


def test_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="backbone.name='resnet10x' is not a timm model"):
        TimmBackbone("resnet10x")
    with pytest.raises(FileNotFoundError, match="expected 'imagenet', null or a weights file of timm's resnet10t"):
        TimmBackbone("resnet10t", pretrained=str(tmp_path / "missing.pth"))


def test_offline_imagenet_names_the_file_to_fetch(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match=r"Download them from https://huggingface.co/timm/resnet10t\.c3_in1k and pass"):
        TimmBackbone("resnet10t", pretrained="imagenet")
