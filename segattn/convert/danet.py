"""Official DANet releases (github.com/junfu1115/DANet, ``encoding/models/sseg/danet.py``).

Keys: ``pretrained.*`` (PyTorch-Encoding ResNet: deep stem ``conv1.{0,1,3,4,6}`` + ``bn1``, 64-64-128),
``head.*`` (``conv5a conv5c sa sc conv51 conv52 conv6 conv7 conv8``, the names segattn's DANetHead
keeps) and optionally ``auxlayer.conv5.{0,1,4}``. Dilated as PyTorch-Encoding: the first block of
layer3/layer4 at half the dilation; the Cityscapes release trains layer4 with multi-grid (4, 8, 16).
RGB ImageNet mean/std input, bilinear resize with ``align_corners=True``.
"""
from __future__ import annotations

from torch import Tensor

from segattn.convert.mapping import rename
from segattn.convert.plan import Plan, out_channels
from segattn.convert.resnet import infer_backbone

MULTI_GRID = [4, 8, 16]
P = "pretrained"
RULES = [(f"{P}.conv1.0.", "backbone.stem.0."), (f"{P}.conv1.1.", "backbone.stem.1."),
         (f"{P}.conv1.3.", "backbone.stem.3."), (f"{P}.conv1.4.", "backbone.stem.4."),
         (f"{P}.conv1.6.", "backbone.stem.6."), (f"{P}.bn1.", "backbone.stem.7."),
         *[(f"{P}.layer{i}.", f"backbone.layer{i}.") for i in range(1, 5)],
         ("head.", "head."),
         ("auxlayer.conv5.0.", "aux_head.convs.0.0."), ("auxlayer.conv5.1.", "aux_head.convs.0.1."),
         ("auxlayer.conv5.4.", "aux_head.cls.1.")]


def matches(state: dict[str, Tensor]) -> bool:
    return "head.conv5a.0.weight" in state and any(k.startswith(f"{P}.") for k in state)


def plan(state: dict[str, Tensor], file_name: str) -> Plan:
    classifier = [k for k in state if k.startswith(f"{P}.fc.")]  # older releases keep the ImageNet classifier
    renamed, unmatched, origin = rename({k: v for k, v in state.items() if k not in classifier}, RULES)
    backbone = infer_backbone(renamed, "ccnet")
    backbone.update(output_stride=8, contract_dilation=True, multi_grid=list(MULTI_GRID))
    head = {"name": "danet", "channels": out_channels(renamed, "head.conv5a.0.weight"),
            "pam_channels": out_channels(renamed, "head.sa.query_conv.weight")}
    model = {"aux_weight": 0.2, "aux_channels": out_channels(renamed, "aux_head.convs.0.0.weight")} \
        if "aux_head.convs.0.0.weight" in renamed else {"aux_weight": 0.0}
    notes = [f"layer4 multi-grid {MULTI_GRID} (the Cityscapes release; not stored in the weights)",
             "PyTorch-Encoding dilation: first block of layer3/layer4 at half the dilation"]
    if classifier:
        notes.append(f"the backbone's ImageNet classifier ({', '.join(classifier)}) is not part of the model: left out")
    return Plan("danet", backbone, head, model, renamed, unmatched,
                num_classes=out_channels(renamed, "head.conv8.1.weight"), notes=notes, origin=origin)
