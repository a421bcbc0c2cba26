"""Dilated ResNet backbones (output stride 8 or 16) in the torchvision, mmseg V1c and official CCNet layouts."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn
from torchvision import models

from segattn.models.imagenet import load_pretrained
from segattn.models.resnet_layout import (
    DILATIONS, STEM_CHANNELS, STEMS, dilate_stage, stage_dilations, three_conv_stem, torchvision_init,
)

_BUILDERS = {
    18: (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    34: (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    50: (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    101: (models.resnet101, models.ResNet101_Weights.IMAGENET1K_V2),
}


def _attach_attention(layers: Sequence[nn.Sequential], attention: str) -> None:
    """Put an SE or CBAM block after the last BN of each residual branch (before the identity add)."""
    from segattn.models.attention import CBAM, SqueezeExcitation

    blocks = {"se": SqueezeExcitation, "cbam": CBAM}
    if attention not in blocks:
        raise ValueError(f"backbone.attention must be one of {sorted(blocks)} or null, got {attention!r}")
    for layer in layers:
        for block in layer:
            name = "bn3" if isinstance(block, models.resnet.Bottleneck) else "bn2"
            bn = getattr(block, name)
            setattr(block, name, nn.Sequential(bn, blocks[attention](bn.num_features)))


class ResNetBackbone(nn.Module):
    """Dilated ResNet-18/34/50/101 returning the four stage features.

    Input ``B x 3 x H x W``; output list ``[c1, c2, c3, c4]`` with ``out_channels`` channels and
    strides 4, 8, 8, 8 (output_stride 8) or 4, 8, 16, 16 (output_stride 16).

    Layouts: ``stem="torchvision"`` (7x7 conv, keys ``stem.0/1``), ``"v1c"`` (mmseg ResNetV1c:
    3x3 convs 32-32-64, keys ``stem.{0,1,3,4,6,7}``) or ``"ccnet"`` (official CCNet, 64-64-128);
    ``stem_channels`` overrides the stem width and ``base_channels`` (64) the width of layer1.
    ``contract_dilation`` gives the first block of a dilated stage half its dilation; ``multi_grid``
    sets the dilation of each layer4 block (e.g. DANet's ``[4, 8, 16]``); ``dilate_basic_conv2=False``
    leaves BasicBlock's second conv undilated (mmseg); ``ceil_mode`` for the stem max-pool (official
    CCNet: True). ``deep_stem=True`` is the older name of ``stem="ccnet"``. New layers get
    torchvision's init. ``pretrained``: ``"imagenet"`` or a local file (torchvision, open-mmlab V1c,
    CCNet/MIT deep-stem or PyTorch-Encoding layout).
    """

    def __init__(
        self,
        depth: int = 50,
        output_stride: int = 8,
        deep_stem: bool = False,
        pretrained: Optional[str] = None,
        attention: Optional[str] = None,
        stem: str = "torchvision",
        stem_channels: Optional[int] = None,
        base_channels: int = 64,
        contract_dilation: bool = False,
        multi_grid: Optional[Sequence[int]] = None,
        dilate_basic_conv2: bool = True,
        ceil_mode: bool = False,
    ):
        super().__init__()
        if depth not in _BUILDERS:
            raise ValueError(f"backbone depth must be one of {sorted(_BUILDERS)}, got {depth}")
        if output_stride not in DILATIONS:
            raise ValueError(f"backbone output_stride must be one of {sorted(DILATIONS)}, got {output_stride}")
        if deep_stem and stem == "torchvision":
            stem = "ccnet"
        if stem not in STEMS:
            raise ValueError(f"backbone.stem must be one of {list(STEMS)}, got {stem!r}")
        stem_channels = stem_channels or STEM_CHANNELS[stem]
        net = _BUILDERS[depth][0](weights=None)  # the torchvision layers (and their init) as before
        block = type(net.layer1[0])
        if stem == "torchvision" and stem_channels == 64:
            net.maxpool.ceil_mode = ceil_mode
            self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        elif stem == "torchvision":
            self.stem = nn.Sequential(nn.Conv2d(3, stem_channels, 7, 2, 3, bias=False), nn.BatchNorm2d(stem_channels),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1, ceil_mode=ceil_mode))
            torchvision_init(self.stem)
        else:
            self.stem = three_conv_stem(stem_channels, ceil_mode)
        layers = [net.layer1, net.layer2, net.layer3, net.layer4]
        if stem_channels != 64 or base_channels != 64:  # other widths: new layers, torchvision's init
            net.inplanes = stem_channels
            layers = [net._make_layer(block, base_channels * 2**i, len(layer), stride=1 if i == 0 else 2)
                      for i, layer in enumerate(layers)]
            for layer in layers:
                torchvision_init(layer)
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.stem_type = stem
        if pretrained:
            load_pretrained(self, pretrained, depth, stem, _BUILDERS[depth][1])
        per_block = stage_dilations(output_stride, [len(layer) for layer in layers], contract_dilation, multi_grid)
        for layer, stage_d, dilations in zip(layers, DILATIONS[output_stride], per_block):
            if stage_d > 1:
                dilate_stage(layer, dilations, dilate_basic_conv2)
        if attention:
            _attach_attention(layers, attention)
        expansion = block.expansion
        self.out_channels = [base_channels * 2**i * expansion for i in range(4)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [c1, c2, c3, self.layer4(c3)]
