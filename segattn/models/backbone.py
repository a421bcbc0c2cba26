"""Dilated ResNet backbones built from torchvision ResNets (output stride 8 or 16)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn
from torchvision import models

_BUILDERS = {
    18: (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    34: (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    50: (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2),
    101: (models.resnet101, models.ResNet101_Weights.IMAGENET1K_V2),
}
_DILATIONS = {8: (1, 1, 2, 4), 16: (1, 1, 1, 2), 32: (1, 1, 1, 1)}


def _deep_stem() -> nn.Sequential:
    """CCNet/PSPNet stem: three 3x3 convs (3->64 stride 2, 64->64, 64->128) with BN-ReLU."""
    layers = []
    for cin, cout, stride in ((3, 64, 2), (64, 64, 1), (64, 128, 1)):
        layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _dilate(layer: nn.Sequential, dilation: int) -> None:
    """Replace the stride of ``layer`` by ``dilation`` in every 3x3 conv of every block (CCNet/mmseg style)."""
    for module in layer.modules():
        if isinstance(module, nn.Conv2d):
            module.stride = (1, 1)
            if module.kernel_size == (3, 3):
                module.dilation = (dilation, dilation)
                module.padding = (dilation, dilation)


def _attach_attention(net: models.ResNet, attention: str) -> None:
    """Put an SE or CBAM block after the last BN of each residual branch (before the identity add)."""
    from segattn.models.attention import CBAM, SqueezeExcitation

    blocks = {"se": SqueezeExcitation, "cbam": CBAM}
    if attention not in blocks:
        raise ValueError(f"backbone.attention must be one of {sorted(blocks)} or null, got {attention!r}")
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            name = "bn3" if isinstance(block, models.resnet.Bottleneck) else "bn2"
            bn = getattr(block, name)
            setattr(block, name, nn.Sequential(bn, blocks[attention](bn.num_features)))


def load_pretrained(net: nn.Module, pretrained: str, depth: int) -> None:
    """Load torchvision ImageNet weights (``"imagenet"``) or a local checkpoint file into ``net``."""
    if pretrained == "imagenet":
        weights = _BUILDERS[depth][1]
        try:
            state = weights.get_state_dict(progress=True)
        except Exception as err:  # offline: urllib / socket errors of many kinds
            raise RuntimeError(
                f"backbone.pretrained=imagenet could not download {weights.url} ({type(err).__name__}: {err}). "
                f"Download that file on a machine with internet and pass backbone.pretrained=/path/to/"
                f"{Path(weights.url).name}, or place it in {torch.hub.get_dir()}/checkpoints/."
            ) from None
    else:
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"backbone.pretrained={pretrained!r}: expected 'imagenet', null or a checkpoint file; no file at {path}"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise RuntimeError(
            f"backbone.pretrained={pretrained!r} does not fit a ResNet-{depth}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


class ResNetBackbone(nn.Module):
    """Dilated ResNet-18/34/50/101 returning the four stage features.

    Input ``B x 3 x H x W``; output list ``[c1, c2, c3, c4]`` with ``out_channels`` channels and
    strides 4, 8, 8, 8 (output_stride 8) or 4, 8, 16, 16 (output_stride 16).
    """

    def __init__(
        self,
        depth: int = 50,
        output_stride: int = 8,
        deep_stem: bool = False,
        pretrained: Optional[str] = None,
        attention: Optional[str] = None,
    ):
        super().__init__()
        if depth not in _BUILDERS:
            raise ValueError(f"backbone depth must be one of {sorted(_BUILDERS)}, got {depth}")
        if output_stride not in _DILATIONS:
            raise ValueError(f"backbone output_stride must be one of {sorted(_DILATIONS)}, got {output_stride}")
        net = _BUILDERS[depth][0](weights=None)
        if pretrained:
            if deep_stem:
                raise ValueError("torchvision weights have the plain stem: use deep_stem=false with pretrained weights")
            load_pretrained(net, pretrained, depth)
        if deep_stem:
            net.conv1, net.bn1 = _deep_stem(), nn.Identity()
            net.inplanes = 128
            net.layer1 = net._make_layer(type(net.layer1[0]), 64, len(net.layer1))
        for layer, dilation in zip((net.layer3, net.layer4), _DILATIONS[output_stride][2:]):
            if dilation > 1:
                _dilate(layer, dilation)
        if attention:
            _attach_attention(net, attention)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if depth >= 50 else 1
        self.out_channels = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [c1, c2, c3, self.layer4(c3)]
