"""ResNet layouts: the three stems (torchvision 7x7, mmseg V1c, official CCNet) and per-block dilations."""
from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

STEMS = ("torchvision", "v1c", "ccnet")
STEM_CHANNELS = {"torchvision": 64, "v1c": 64, "ccnet": 128}  # output width of each stem by default
DILATIONS = {8: (1, 1, 2, 4), 16: (1, 1, 1, 2), 32: (1, 1, 1, 1)}  # layer1..layer4 by output stride


def torchvision_init(module: nn.Module) -> None:
    """torchvision's ResNet init: conv ``kaiming_normal_(fan_out, relu)``, BN weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def three_conv_stem(channels: int, ceil_mode: bool = False) -> nn.Sequential:
    """Three 3x3 conv-BN-ReLU (3 -> c/2 stride 2, c/2 -> c/2, c/2 -> c) and a 3x3 stride-2 max-pool.

    Keys ``stem.{0,1,3,4,6,7}`` as mmseg's ResNetV1c (``channels=64``: 32-32-64); the official
    CCNet stem is the same with ``channels=128`` (64-64-128). ``B x 3 x H x W -> B x c x H/4 x W/4``.
    """
    half = channels // 2
    layers: list[nn.Module] = []
    for cin, cout, stride in ((3, half, 2), (half, half, 1), (half, channels, 1)):
        layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    stem = nn.Sequential(*layers, nn.MaxPool2d(3, 2, 1, ceil_mode=ceil_mode))
    torchvision_init(stem)
    return stem


def stage_dilations(
    output_stride: int, num_blocks: Sequence[int], contract_dilation: bool = False,
    multi_grid: Optional[Sequence[int]] = None,
) -> list[list[int]]:
    """Dilation of each block of layer1..layer4.

    A stage with dilation ``d > 1`` keeps stride 1; ``contract_dilation`` gives its first block ``d // 2``
    (mmseg's ResNetV1c, PyTorch-Encoding); ``multi_grid`` sets layer4's block dilations outright,
    cycling when shorter (DANet's ``(4, 8, 16)``; mmseg and DANet both read them as absolute rates).
    """
    if output_stride not in DILATIONS:
        raise ValueError(f"backbone output_stride must be one of {sorted(DILATIONS)}, got {output_stride}")
    result = []
    for stage, (d, n) in enumerate(zip(DILATIONS[output_stride], num_blocks)):
        if stage == 3 and multi_grid:
            if d == 1:
                raise ValueError(f"backbone.multi_grid needs a dilated layer4 (output_stride 8 or 16), got {output_stride}")
            result.append([int(multi_grid[i % len(multi_grid)]) for i in range(n)])
        else:
            first = d // 2 if (contract_dilation and d > 1) else d
            result.append([first] + [d] * (n - 1))
    return result


def dilate_stage(layer: nn.Sequential, dilations: Sequence[int], dilate_basic_conv2: bool = True) -> None:
    """Give block i of ``layer`` dilation ``dilations[i]`` and replace the stage's stride by 1.

    Bottleneck: ``conv2`` is dilated. BasicBlock: ``conv1``, and ``conv2`` too unless
    ``dilate_basic_conv2=False`` (mmseg's BasicBlock keeps ``conv2`` at dilation 1).
    """
    for module in layer.modules():
        if isinstance(module, nn.Conv2d):
            module.stride = (1, 1)
    for block, d in zip(layer, dilations):
        convs = [block.conv2] if hasattr(block, "conv3") else [block.conv1] + ([block.conv2] if dilate_basic_conv2 else [])
        for conv in convs:
            conv.dilation, conv.padding = (d, d), (d, d)
