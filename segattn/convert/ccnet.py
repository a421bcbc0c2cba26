"""Official CCNet releases (github.com/speedinghzl/CCNet, ``networks/ccnet.py``).

Keys: deep stem ``conv1 bn1 conv2 bn2 conv3 bn3`` (64-64-128), ``layer1..4``, ``head`` (RCCAModule:
``conva.0/1``, ``cca.*``, ``convb.0/1``, ``bottleneck.0/1`` and classifier ``bottleneck.3``) and the
layer3 auxiliary ``dsn`` (``0`` conv with bias, ``1`` BN, ``3`` classifier). Every BN is an
InPlaceABN, whose scale is ``|weight| + eps``; the head's ABN activation is LeakyReLU 0.01. Max-pool
with ``ceil_mode``, layer3/layer4 dilation 2/4 in every block, BGR input minus caffe means, no std.
"""
from __future__ import annotations

from torch import Tensor

from segattn.constants import CAFFE_BGR_MEAN
from segattn.convert.mapping import rename
from segattn.convert.plan import Plan, out_channels
from segattn.convert.resnet import infer_backbone

ABN_EPS = 1e-5
RULES = [("conv1.", "backbone.stem.0."), ("bn1.", "backbone.stem.1."), ("conv2.", "backbone.stem.3."),
         ("bn2.", "backbone.stem.4."), ("conv3.", "backbone.stem.6."), ("bn3.", "backbone.stem.7."),
         *[(f"layer{i}.", f"backbone.layer{i}.") for i in range(1, 5)],
         ("head.conva.", "head.conva."), ("head.cca.", "head.cca."), ("head.convb.", "head.convb."),
         ("head.bottleneck.0.", "head.bottleneck.0."), ("head.bottleneck.1.", "head.bottleneck.1."),
         ("head.bottleneck.3.", "head.cls.1."),
         ("dsn.0.", "aux_head.convs.0.0."), ("dsn.1.", "aux_head.convs.0.1."), ("dsn.3.", "aux_head.cls.1.")]


def matches(state: dict[str, Tensor]) -> bool:
    return "head.conva.0.weight" in state and "conv2.weight" in state


def _from_inplace_abn(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """InPlaceABN scales by ``|w| + eps``: store that as BatchNorm's weight; fold ``dsn.0``'s conv bias
    into the next BN's running mean (``BN(conv + c) = BN'(conv)`` with ``mean' = mean - c``)."""
    out = dict(state)
    for key in state:
        if key.endswith(".running_mean"):
            weight = key[: -len("running_mean")] + "weight"
            if weight in out:
                out[weight] = state[weight].abs() + ABN_EPS
    bias = out.pop("aux_head.convs.0.0.bias", None)
    if bias is not None:
        out["aux_head.convs.0.1.running_mean"] = out["aux_head.convs.0.1.running_mean"] - bias
    return out


def plan(state: dict[str, Tensor], file_name: str) -> Plan:
    renamed, unmatched, origin = rename(state, RULES)
    renamed = _from_inplace_abn(renamed)
    backbone = infer_backbone(renamed, "ccnet")
    backbone.update(output_stride=8, ceil_mode=True, contract_dilation=False)
    head = {"name": "ccnet", "channels": out_channels(renamed, "head.bottleneck.0.weight"), "recurrence": 2,
            "activation": "leaky_relu"}
    model = {"aux_weight": 0.4, "aux_channels": out_channels(renamed, "aux_head.convs.0.0.weight")} \
        if "aux_head.convs.0.0.weight" in renamed else {"aux_weight": 0.0}
    model["normalization"] = {"mean": list(CAFFE_BGR_MEAN), "std": None, "channel_order": "bgr"}
    notes = ["recurrence=2 (the released models' setting; not stored in the weights)",
             "InPlaceABN scales |w|+eps written as BatchNorm weights; dsn conv bias folded into its BN",
             "BGR input minus caffe means, no std; LeakyReLU 0.01 in the heads; max-pool ceil_mode"]
    return Plan("ccnet", backbone, head, model, renamed, unmatched,
                num_classes=out_channels(renamed, "head.cls.1.weight"), notes=notes, origin=origin)
