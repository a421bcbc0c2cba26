"""Plain FCN head (the no-attention baseline and the auxiliary head on layer3)."""
from __future__ import annotations

from torch import Tensor, nn


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """``kernel_size`` conv (same padding, no bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def classifier(in_channels: int, num_classes: int, dropout: float) -> nn.Sequential:
    """Dropout2d -> 1x1 conv to class logits."""
    return nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(in_channels, num_classes, 1))


class FCNHead(nn.Module):
    """``num_convs`` 3x3 conv-BN-ReLU layers then a 1x1 classifier: ``B x C x h x w -> B x K x h x w``."""

    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512, num_convs: int = 2, dropout: float = 0.1):
        super().__init__()
        widths = [in_channels] + [channels] * num_convs
        self.convs = nn.Sequential(*(conv_bn_relu(a, b) for a, b in zip(widths, widths[1:])))
        self.cls = classifier(widths[-1], num_classes, dropout)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"out": self.cls(self.convs(x))}
