"""ANN head (Zhu et al., "Asymmetric Non-local Neural Networks for Semantic Segmentation", ICCV 2019), laid out as
mmsegmentation's ANNHead."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from segattn.models.attention.asymmetric_non_local import AsymmetricFusion, AsymmetricPyramidNonLocal
from segattn.models.heads.fcn import classifier, conv_bn_relu


class ANNHead(nn.Module):
    """``x: B x C_in x h x w`` (layer4), ``layer3: B x C_3 x h x w`` -> ``{"out": B x K x h x w}``.

    ``fusion``: :class:`AsymmetricFusion` (AFNB; queries from layer4, pyramid-pooled keys / values from layer3,
    ``project_channels`` wide, output C_in), Dropout2d, ``bottleneck`` (3x3 conv-BN-ReLU, C_in -> ``channels``),
    ``context``: :class:`AsymmetricPyramidNonLocal` (APNB), Dropout2d and a 1x1 classifier. ``key_pool_scales``:
    the pyramid's output sizes (``sum s^2`` key positions).
    """

    uses_layer3 = True
    loss_weights: dict[str, float] = {}

    def __init__(self, in_channels: int, num_classes: int, layer3_channels: int, channels: int = 512,
                 project_channels: int = 256, key_pool_scales: Sequence[int] = (1, 3, 6, 8), dropout: float = 0.1):
        super().__init__()
        self.fusion = AsymmetricFusion(layer3_channels, in_channels, project_channels, in_channels, key_pool_scales)
        self.dropout = nn.Dropout2d(dropout)
        self.bottleneck = conv_bn_relu(in_channels, channels)
        self.context = AsymmetricPyramidNonLocal(channels, project_channels, key_pool_scales)
        self.cls = classifier(channels, num_classes, dropout)

    def forward(self, x: Tensor, layer3: Tensor) -> dict[str, Tensor]:
        return {"out": self.cls(self.context(self.bottleneck(self.dropout(self.fusion(layer3, x)))))}
