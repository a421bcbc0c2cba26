"""Segmentor: dilated backbone -> head (+ auxiliary FCN head on layer3), logits upsampled to the input."""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import torch.nn.functional as F
from torch import Tensor, nn

from segattn.models.head_init import HEAD_INITS, mmseg_head_init
from segattn.models.heads.fcn import FCNHead
from segattn.models.normalization import InputNormalization


class Segmentor(nn.Module):
    """``B x 3 x H x W`` image -> ``B x K x H x W`` logits.

    ``head`` is a head class (or partial) called as ``head(in_channels, num_classes)`` and applied to layer4's
    features; a head class with ``uses_layer3 = True`` (OCRNet, ANN) is built with ``layer3_channels`` too and
    applied as ``head(layer4, layer3)``. The auxiliary
    FCN head on layer3 (same activation as the head) is trained with weight ``aux_weight`` and skipped
    at inference. Logits are resized bilinearly with ``align_corners``. ``normalization``
    (``mean``, ``std``, ``channel_order``; see :class:`InputNormalization`) re-normalises the data
    pipeline's ImageNet-normalised RGB input to what the weights were trained with. ``head_init``:
    ``default`` (PyTorch's) or ``mmseg`` (see :func:`mmseg_head_init`) for the head and aux head.
    """

    def __init__(self, backbone: nn.Module, head: Callable[..., nn.Module], num_classes: int,
                 aux_weight: float = 0.4, aux_channels: int = 256, align_corners: bool = False,
                 normalization: Optional[Mapping] = None, head_init: str = "default"):
        super().__init__()
        if head_init not in HEAD_INITS:
            raise ValueError(f"model.head_init must be one of {list(HEAD_INITS)}, got {head_init!r}")
        self.backbone = backbone
        self.uses_layer3 = bool(getattr(getattr(head, "func", head), "uses_layer3", False))
        layer3 = {"layer3_channels": backbone.out_channels[-2]} if self.uses_layer3 else {}
        self.head = head(in_channels=backbone.out_channels[-1], num_classes=num_classes, **layer3)
        self.aux_weight = aux_weight
        self.aux_head = (
            FCNHead(backbone.out_channels[-2], num_classes, channels=aux_channels, num_convs=1,
                    activation=getattr(self.head, "activation", "relu"))
            if aux_weight > 0 else None
        )
        self.num_classes = num_classes
        self.align_corners = bool(align_corners)
        self.normalization = dict(normalization or {})  # as given: the checkpoint's config keeps it
        self.normalize = InputNormalization(**self.normalization)
        self.class_names = [f"class_{i}" for i in range(num_classes)]  # metadata: load_model sets the checkpoint's
        self.palette: Optional[list] = None
        self.test_pipeline: Optional[dict] = None  # load_model sets the checkpoint's (resize, whole / slide)
        if head_init == "mmseg":
            for head_module in (self.head, self.aux_head):
                if head_module is not None:
                    mmseg_head_init(head_module, num_classes)

    @property
    def loss_weights(self) -> dict[str, float]:
        """Weight of each named output of :meth:`forward_train` in the training loss."""
        weights = {"out": 1.0, **self.head.loss_weights}
        if self.aux_head is not None:
            weights["aux"] = self.aux_weight
        return weights

    def forward_train(self, x: Tensor) -> dict[str, Tensor]:
        """All supervised logits (main, head extras, aux), each ``B x K x H x W``."""
        features = self.backbone(self.normalize(x))
        outputs = dict(self.apply_head(features))
        if self.aux_head is not None:
            outputs["aux"] = self.aux_head(features[-2])["out"]
        return {name: self.resize(logits, x.shape[-2:]) for name, logits in outputs.items()}

    def compile(self, *args, **kwargs) -> None:
        """``torch.compile`` the backbone and the heads in place (``forward_train`` calls them, not ``self``);
        arguments as :meth:`torch.nn.Module.compile`. Parameter names and checkpoints stay as they are."""
        for child in self.children():
            child.compile(*args, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Main logits ``B x K x H x W``."""
        return self.resize(self.apply_head(self.backbone(self.normalize(x)))["out"], x.shape[-2:])

    def apply_head(self, features) -> dict[str, Tensor]:
        """The head's outputs on the backbone's ``features`` (layer4, and layer3 for a ``uses_layer3`` head)."""
        return self.head(features[-1], features[-2]) if self.uses_layer3 else self.head(features[-1])

    def predict(self, image, mode: Optional[str] = None, crop_size=None, stride=None, scales=(1.0,), flip: bool = False,
                return_probabilities: bool = False, channel_order: str = "rgb"):
        """One image (uint8 array, PIL image, path, or float tensor in [0, 1]) -> ``H x W`` class ids
        [and ``K x H x W`` probabilities], through :attr:`test_pipeline` where arguments are None; see
        :func:`segattn.inference.predict.predict`."""
        from segattn.inference.predict import predict  # inference drives models, not the other way round

        return predict(self, image, mode, crop_size, stride, scales, flip, return_probabilities,
                       channel_order=channel_order)

    def resize(self, logits: Tensor, size) -> Tensor:
        """Bilinear resize of ``B x K x h x w`` logits to ``size`` with the model's ``align_corners``."""
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=self.align_corners)
