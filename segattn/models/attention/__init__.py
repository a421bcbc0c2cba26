"""The five attention designs as plain nn.Modules: criss-cross (CCNet), position and channel
attention (DANet), non-local, squeeze-and-excitation and CBAM."""
from segattn.models.attention.cbam import CBAM
from segattn.models.attention.criss_cross import CrissCrossAttention
from segattn.models.attention.dual import ChannelAttention, PositionAttention
from segattn.models.attention.non_local import NonLocal2d
from segattn.models.attention.se import SqueezeExcitation

__all__ = ["CBAM", "ChannelAttention", "CrissCrossAttention", "NonLocal2d", "PositionAttention", "SqueezeExcitation"]
