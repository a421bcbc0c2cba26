"""Any timm model as a backbone (``backbone=timm backbone.name=resnet101d``): ``features_only`` + ``output_stride``.

timm is an optional extra (``pip install 'segattn[timm]'``); it is imported only when this backbone is built.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn


def _timm():
    try:
        import timm
    except ImportError:
        raise ImportError("backbone=timm needs the timm package: pip install 'segattn[timm]' (or pip install timm)") from None
    return timm


class TimmBackbone(nn.Module):
    """timm ``name`` with ``features_only=True``: ``B x 3 x H x W -> [c1, c2, c3, c4]`` (``out_indices``).

    ``output_stride`` 8 or 16 dilates the last stages (timm's own dilation); ``out_channels`` from
    timm's ``feature_info``. ``pretrained``: a local ImageNet weights file of that timm model
    (``.pth`` / ``.safetensors``, as timm or the Hugging Face hub ``timm/<name>`` ship it), or
    ``imagenet`` to let timm download it (offline: the message names the file to fetch).
    """

    def __init__(self, name: str, output_stride: int = 8, pretrained: Optional[str] = None,
                 out_indices: Sequence[int] = (1, 2, 3, 4), **kwargs):
        super().__init__()
        timm = _timm()
        if name not in timm.list_models():
            close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
            raise ValueError(f"backbone.name={name!r} is not a timm model (close: {close})")
        options = dict(features_only=True, output_stride=output_stride, out_indices=tuple(out_indices), **kwargs)
        if pretrained and pretrained != "imagenet":
            path = Path(pretrained).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"backbone.pretrained={pretrained!r}: expected 'imagenet', null or a weights "
                                        f"file of timm's {name}; no file at {path}")
            options.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
        elif pretrained == "imagenet":
            options.update(pretrained=True)
        try:
            self.body = timm.create_model(name, **options)
        except (OSError, RuntimeError) as err:
            if pretrained != "imagenet":
                raise
            source = timm.models.get_pretrained_cfg(name)
            where = f"https://huggingface.co/{source.hf_hub_id}" if source and source.hf_hub_id else (source.url if source else name)
            raise RuntimeError(f"backbone.pretrained=imagenet could not fetch timm's {name} weights ({type(err).__name__}: "
                               f"{err}). Download them from {where} and pass backbone.pretrained=/path/to/the/file") from None
        self.out_channels = list(self.body.feature_info.channels())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))
