"""Head options (activation, concat_input, use_scale), input normalisation and align_corners in every resize."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segattn.inference.passes import predict_probabilities
from segattn.models.heads import DANetHead, DNLHead, EMAHead, FCNHead, NonLocalHead, RCCAHead
from segattn.models.normalization import InputNormalization

HEADS = [RCCAHead, DANetHead, NonLocalHead, FCNHead, DNLHead, EMAHead]  # GCHead: its block's ReLU is the paper's


@pytest.mark.parametrize("head", HEADS, ids=lambda h: h.__name__)
def test_leaky_relu_activation_everywhere_in_the_head(head):
    module = head(64, 5, channels=16, activation="leaky_relu")
    acts = [m for m in module.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    assert acts and all(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.01 for m in acts)
    assert all(isinstance(m, nn.ReLU) for m in head(64, 5, channels=16).modules()
               if isinstance(m, (nn.ReLU, nn.LeakyReLU)))
    with pytest.raises(ValueError, match=r"head activation must be one of \['relu', 'leaky_relu'\], got 'gelu'"):
        head(64, 5, channels=16, activation="gelu")


def test_fcn_concat_input_concatenates_the_input_before_the_classifier():
    head = FCNHead(8, 3, channels=4, num_convs=2, concat_input=True).eval()
    assert head.conv_cat[0].in_channels == 12
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        expected = head.cls(head.conv_cat(torch.cat([x, head.convs(x)], 1)))
        assert torch.equal(head(x)["out"], expected)
    assert FCNHead(8, 3, channels=4).conv_cat is None


def test_nonlocal_use_scale_and_attention_widths():
    assert NonLocalHead(64, 5, channels=16, use_scale=False).nl_block.scale == 1.0
    assert NonLocalHead(64, 5, channels=16).nl_block.scale == pytest.approx(8 ** -0.5)
    assert RCCAHead(64, 5, channels=16, inter_channels=32).cca.query_conv.weight.shape == (4, 32, 1, 1)
    pam = DANetHead(64, 5, channels=16, pam_channels=4).sa
    assert pam.query_conv.weight.shape == (4, 16, 1, 1) and pam.key_conv.weight.shape == (4, 16, 1, 1)
    with torch.no_grad():
        assert pam(torch.randn(1, 16, 3, 4)).shape == (1, 16, 3, 4)


def test_input_normalization_default_is_identity_and_custom_values_apply():
    x = torch.randn(1, 3, 2, 2)
    assert InputNormalization().identity and InputNormalization()(x) is x
    pixels = torch.tensor([10.0, 120.0, 250.0]).view(1, 3, 1, 1)
    pipeline = (pixels / 255 - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = InputNormalization(mean=[1, 2, 3], std=[2, 4, 5])(pipeline)
    assert torch.allclose(out.flatten(), torch.tensor([(10 - 1) / 2, (120 - 2) / 4, (250 - 3) / 5]), atol=1e-4)
    with pytest.raises(ValueError, match="channel_order must be rgb or bgr"):
        InputNormalization(channel_order="bgrx")


class _Fixed(nn.Module):
    """Returns the same 1 x 2 x 3 x 3 logits whatever the input; carries align_corners."""

    def __init__(self, align_corners: bool):
        super().__init__()
        self.align_corners = align_corners
        self.logits = torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(0))

    def forward(self, x):
        return self.logits


@pytest.mark.parametrize("align_corners", [False, True])
def test_predict_probabilities_resizes_with_the_model_align_corners(align_corners):
    model = _Fixed(align_corners)
    probs = predict_probabilities(model, torch.zeros(1, 3, 7, 9), num_classes=2, out_size=(7, 9))
    expected = F.interpolate(model.logits, size=(7, 9), mode="bilinear", align_corners=align_corners).softmax(1)
    assert torch.allclose(probs, expected)
    other = F.interpolate(model.logits, size=(7, 9), mode="bilinear", align_corners=not align_corners).softmax(1)
    assert not torch.allclose(probs, other)


def test_emanet_mid_conv_is_frozen_and_concat_input_is_optional():
    head = EMAHead(8, 3, channels=4, ema_channels=6, num_bases=5)
    assert not any(p.requires_grad for p in head.ema_mid_conv.parameters()) and head.conv_cat[0].in_channels == 12
    big = EMAHead(8, 3, channels=4, ema_channels=256, num_bases=5)  # kaiming normal, fan_out 256, as mmcv's ConvModule
    assert abs(big.ema_mid_conv.weight.std().item() / (2 / 256) ** 0.5 - 1) < 0.05 and not big.ema_mid_conv.bias.any()
    plain = EMAHead(8, 3, channels=4, ema_channels=6, num_bases=5, concat_input=False).eval()
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        feats = plain.ema_in_conv(x)
        recon = plain.ema_out_conv(F.relu(plain.ema_module(plain.ema_mid_conv(feats))))
        assert plain.conv_cat is None and torch.equal(plain(x)["out"], plain.cls(plain.bottleneck(F.relu(feats + recon))))
