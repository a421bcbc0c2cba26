"""Segmentor: dilated backbone -> head (+ auxiliary FCN head on layer3), logits upsampled to the input."""
from __future__ import annotations

from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.heads.fcn import FCNHead


class Segmentor(nn.Module):
    """``B x 3 x H x W`` image -> ``B x K x H x W`` logits.

    ``head`` is a head class (or partial) called as ``head(in_channels, num_classes)``; the auxiliary
    FCN head on layer3 is trained with weight ``aux_weight`` and skipped at inference.
    """

    def __init__(self, backbone: nn.Module, head: Callable[..., nn.Module], num_classes: int,
                 aux_weight: float = 0.4, aux_channels: int = 256):
        super().__init__()
        self.backbone = backbone
        self.head = head(in_channels=backbone.out_channels[-1], num_classes=num_classes)
        self.aux_weight = aux_weight
        self.aux_head = (
            FCNHead(backbone.out_channels[-2], num_classes, channels=aux_channels, num_convs=1)
            if aux_weight > 0 else None
        )
        self.num_classes = num_classes

    @property
    def loss_weights(self) -> dict[str, float]:
        """Weight of each named output of :meth:`forward_train` in the training loss."""
        weights = {"out": 1.0, **self.head.loss_weights}
        if self.aux_head is not None:
            weights["aux"] = self.aux_weight
        return weights

    def forward_train(self, x: Tensor) -> dict[str, Tensor]:
        """All supervised logits (main, head extras, aux), each ``B x K x H x W``."""
        features = self.backbone(x)
        outputs = dict(self.head(features[-1]))
        if self.aux_head is not None:
            outputs["aux"] = self.aux_head(features[-2])["out"]
        return {name: _resize(logits, x.shape[-2:]) for name, logits in outputs.items()}

    def compile(self, *args, **kwargs) -> None:
        """``torch.compile`` the backbone and the heads in place (``forward_train`` calls them, not ``self``);
        arguments as :meth:`torch.nn.Module.compile`. Parameter names and checkpoints stay as they are."""
        for child in self.children():
            child.compile(*args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Main logits ``B x K x H x W``."""
        return _resize(self.head(self.backbone(x)[-1])["out"], x.shape[-2:])


def _resize(logits: Tensor, size) -> Tensor:
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
