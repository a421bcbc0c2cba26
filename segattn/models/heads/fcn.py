"""Plain FCN head (the no-attention baseline and the auxiliary head on layer3) and the layers every head shares."""
from __future__ import annotations

import torch
from torch import Tensor, nn

ACTIVATIONS = ("relu", "leaky_relu")


def activation_layer(name: str) -> nn.Module:
    """``relu`` | ``leaky_relu`` (slope 0.01, the official CCNet's InPlaceABN activation)."""
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01, inplace=True)
    raise ValueError(f"head activation must be one of {list(ACTIVATIONS)}, got {name!r}")


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, activation: str = "relu") -> nn.Sequential:
    """``kernel_size`` conv (same padding, no bias) -> BatchNorm -> ReLU (or LeakyReLU 0.01)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        activation_layer(activation),
    )


def classifier(in_channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout2d -> 1x1 conv to class logits."""
    return nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(in_channels, num_classes, 1))


class FCNHead(nn.Module):
    """``num_convs`` 3x3 conv-BN-ReLU layers then a 1x1 classifier: ``B x C x h x w -> B x K x h x w``.

    ``concat_input`` (mmseg's FCN baseline): ``conv_cat`` (3x3 conv-BN-ReLU, C + ``channels`` ->
    ``channels``) on the concatenation ``[x; convs(x)]`` before the classifier.
    """

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, num_convs: int = 2,
                 dropout: float = 0.1, concat_input: bool = False, activation: str = "relu"):
        super().__init__()
        if concat_input and num_convs < 1:
            raise ValueError("FCNHead concat_input needs num_convs >= 1")
        self.activation = activation
        widths = [in_channels] + [channels] * num_convs
        self.convs = nn.Sequential(*(conv_bn_relu(a, b, activation=activation) for a, b in zip(widths, widths[1:])))
        self.conv_cat = conv_bn_relu(in_channels + channels, channels, activation=activation) if concat_input else None
        self.cls = classifier(widths[-1], num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out = self.convs(x)
        if self.conv_cat is not None:
            out = self.conv_cat(torch.cat([x, out], 1))
        return {"out": self.cls(out)}
