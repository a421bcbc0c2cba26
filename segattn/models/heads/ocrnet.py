"""OCRNet head (Yuan et al., "Object-Contextual Representations for Semantic Segmentation", ECCV 2020), laid out as
mmsegmentation's CascadeEncoderDecoder with an FCNHead on layer3 and an OCRHead on layer4."""
from __future__ import annotations

from torch import Tensor, nn

from segattn.models.attention.object_context import ObjectContextBlock
from segattn.models.heads.fcn import FCNHead, classifier, conv_bn_relu


class OCRHead(nn.Module):
    """``x: B x C_in x h x w`` (layer4), ``layer3: B x C_3 x h x w`` -> ``{"out", "soft_region"}``, each ``B x K x h x w``.

    ``soft_region``: an FCN head on layer3 (one 3x3 conv-BN-ReLU, ``C_3 -> soft_region_channels``, Dropout2d,
    classifier) whose logits are the soft object regions; it is trained with its own loss (weight
    ``soft_region_weight``) and is part of inference, not an auxiliary head. ``bottleneck`` (3x3 conv-BN-ReLU,
    ``C_in -> channels``), :class:`ObjectContextBlock` (``ocr_channels`` wide keys) on those features and regions,
    Dropout2d and a 1x1 classifier give ``out``.
    """

    uses_layer3 = True

    def __init__(self, in_channels: int, num_classes: int, layer3_channels: int, channels: int = 512,
                 ocr_channels: int = 256, soft_region_channels: int = 256, soft_region_weight: float = 0.4,
                 dropout: float = 0.1):
        super().__init__()
        self.loss_weights = {"soft_region": soft_region_weight}
        self.soft_region = FCNHead(layer3_channels, num_classes, channels=soft_region_channels, num_convs=1,
                                   dropout=dropout)
        self.bottleneck = conv_bn_relu(in_channels, channels)
        self.ocr = ObjectContextBlock(channels, ocr_channels)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor, layer3: Tensor) -> dict[str, Tensor]:
        regions = self.soft_region(layer3)["out"]
        return {"out": self.cls(self.ocr(self.bottleneck(x), regions)), "soft_region": regions}
