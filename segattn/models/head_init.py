"""mmseg's initialisation of decode and auxiliary heads (``model.head_init=mmseg``)."""
from __future__ import annotations

from torch import nn

HEAD_INITS = ("default", "mmseg")


def mmseg_head_init(head: nn.Module, num_classes: int) -> None:
    """As mmcv's ConvModule and mmseg's BaseDecodeHead: every conv-BN-act conv ``kaiming_normal_(fan_out, relu)``,
    BN weight 1 and bias 0, the 1x1 classifiers ``normal(0, 0.01)`` with zero bias. Attention blocks keep theirs."""
    for m in head.modules():
        if isinstance(m, nn.Sequential) and len(m) == 3 and isinstance(m[0], nn.Conv2d) and isinstance(m[1], nn.BatchNorm2d):
            nn.init.kaiming_normal_(m[0].weight, mode="fan_out", nonlinearity="relu")
            nn.init.ones_(m[1].weight)
            nn.init.zeros_(m[1].bias)
        elif isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.out_channels == num_classes and m.bias is not None:
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
