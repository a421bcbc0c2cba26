"""DANet head (Fu et al., "Dual Attention Network for Scene Segmentation", CVPR 2019)."""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from segattn.models.attention.dual import ChannelAttention, PositionAttention
from segattn.models.heads.fcn import classifier, conv_bn_relu


class DANetHead(nn.Module):
    """Position and channel attention branches, summed: ``B x C_in x h x w -> {"out", "pam", "cam"}: B x K x h x w``.

    Each branch: 3x3 conv-BN-ReLU (C_in -> ``channels``), PAM or CAM, 3x3 conv-BN-ReLU. ``"out"``
    classifies the sum of the two branches; in training mode ``"pam"`` and ``"cam"`` classify each
    branch alone and are supervised with ``pam_weight`` / ``cam_weight``; in eval mode only ``"out"``
    is computed. The official head uses ``channels = C_in // 4`` (2048 -> 512 on ResNet-50/101).
    Module names follow the official release (``conv5a`` ... ``conv8``), so its head weights load.
    ``pam_channels`` (default ``channels // 8``) is PAM's query/key width (mmseg's DAHead sets it);
    ``activation``: ``relu`` or ``leaky_relu`` (0.01).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: int = 512,
        dropout: float = 0.1,
        pam_weight: float = 1.0,
        cam_weight: float = 1.0,
        pam_channels: Optional[int] = None,
        activation: str = "relu",
    ):
        super().__init__()
        self.loss_weights = {"pam": pam_weight, "cam": cam_weight}
        self.activation = activation
        self.conv5a = conv_bn_relu(in_channels, channels, activation=activation)  # position branch
        self.sa = PositionAttention(channels)
        if pam_channels and pam_channels != channels // 8:  # PAM reads its query/key width from query_conv
            self.sa.query_conv = nn.Conv2d(channels, pam_channels, 1)
            self.sa.key_conv = nn.Conv2d(channels, pam_channels, 1)
        self.conv51 = conv_bn_relu(channels, channels, activation=activation)
        self.conv5c = conv_bn_relu(in_channels, channels, activation=activation)  # channel branch
        self.sc = ChannelAttention()
        self.conv52 = conv_bn_relu(channels, channels, activation=activation)
        self.conv6 = classifier(channels, num_classes, dropout)  # "pam"
        self.conv7 = classifier(channels, num_classes, dropout)  # "cam"
        self.conv8 = classifier(channels, num_classes, dropout)  # "out"

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        pam = self.conv51(self.sa(self.conv5a(x)))
        cam = self.conv52(self.sc(self.conv5c(x)))
        out = {"out": self.conv8(pam + cam)}
        if self.training:
            out.update(pam=self.conv6(pam), cam=self.conv7(cam))
        return out
