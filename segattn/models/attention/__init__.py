"""The attention designs as plain nn.Modules: criss-cross (CCNet), position and channel attention (DANet),
non-local, disentangled non-local (DNL), global context (GCNet), EM attention (EMANet), interlaced sparse
(ISANet), object context (OCRNet), asymmetric
non-local (ANN: APNB, AFNB), key-query attention (ISANet / OCRNet / ANN), point-wise spatial
attention (PSANet),
squeeze-and-excitation and CBAM."""
from segattn.models.attention.asymmetric_non_local import AsymmetricFusion, AsymmetricPyramidNonLocal
from segattn.models.attention.cbam import CBAM
from segattn.models.attention.criss_cross import CrissCrossAttention
from segattn.models.attention.disentangled_non_local import DisentangledNonLocal2d
from segattn.models.attention.dual import ChannelAttention, PositionAttention
from segattn.models.attention.em_attention import EMAttention
from segattn.models.attention.global_context import GlobalContextBlock
from segattn.models.attention.interlaced_sparse import InterlacedSparseAttention
from segattn.models.attention.key_query import KeyQueryAttention
from segattn.models.attention.non_local import NonLocal2d
from segattn.models.attention.object_context import ObjectContextBlock
from segattn.models.attention.point_wise_spatial import PointwiseSpatialAttention
from segattn.models.attention.se import SqueezeExcitation

__all__ = ["AsymmetricFusion", "AsymmetricPyramidNonLocal", "CBAM", "ChannelAttention", "CrissCrossAttention", "DisentangledNonLocal2d", "EMAttention",
           "GlobalContextBlock", "InterlacedSparseAttention",
           "KeyQueryAttention", "NonLocal2d", "ObjectContextBlock", "PointwiseSpatialAttention", "PositionAttention", "SqueezeExcitation"]
