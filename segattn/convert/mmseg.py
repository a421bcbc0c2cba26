"""mmsegmentation model-zoo files: ``{"meta": {...}, "state_dict": {"backbone.*", "decode_head.*", "auxiliary_head.*"}}``.

Heads: CCHead, DAHead, NLHead, GCHead, DNLHead, EMAHead, ISAHead, OCRHead (with its layer3 FCNHead), ANNHead,
PSAHead, FCNHead on ResNetV1c (``backbone.stem.*``, ``contract_dilation``, BasicBlock's second conv undilated); an
auxiliary FCNHead with one conv on layer3.
"""
from __future__ import annotations

import math
import re

from torch import Tensor

from segattn.convert.errors import ConversionError
from segattn.convert.mapping import rename
from segattn.convert.plan import Plan, conv_bn, out_channels
from segattn.convert.resnet import infer_backbone

SUPPORTED = {"CCHead": "ccnet", "DAHead": "danet", "NLHead": "nonlocal", "GCHead": "gcnet", "DNLHead": "dnl",
             "EMAHead": "emanet", "ISAHead": "isanet", "OCRHead": "ocrnet", "ANNHead": "ann", "PSAHead": "psanet",
             "FCNHead": "fcn"}
_OTHER_HEADS = {"psp_modules": "PSPHead", "aspp_modules": "ASPPHead", "image_pool": "ASPPHead",
                "enc_module": "EncHead", "apc_modules": "APCHead",
                "dm_modules": "DMHead", "lateral_convs": "UPerHead/FPNHead"}
D = "decode_head"


def matches(state: dict[str, Tensor]) -> bool:
    return any(k.startswith("decode_head.") for k in state) and any(k.startswith("backbone.") for k in state)


def head_type(state: dict[str, Tensor]) -> str:
    """The mmseg decode-head class the keys belong to; ConversionError listing the supported ones otherwise."""
    if f"{D}.cca.query_conv.weight" in state:
        return "CCHead"
    if f"{D}.pam.query_project.weight" in state:
        return "DAHead"
    if f"{D}.nl_block.g.conv.weight" in state:
        return "NLHead"
    if f"{D}.1.object_context_block.bottleneck.conv.weight" in state:
        return "OCRHead"
    names = {k.split(".")[1] for k in state if k.startswith(f"{D}.")}
    for part, cls in (("gc_block", "GCHead"), ("dnl_block", "DNLHead"), ("ema_module", "EMAHead"),
                      ("global_relation", "ISAHead"), ("fusion", "ANNHead"),
                      ("attention", "PSAHead")):
        if part in names:
            return cls
    if names and names <= {"convs", "conv_cat", "conv_seg"}:
        return "FCNHead"
    found = next((cls for part, cls in _OTHER_HEADS.items() if part in names), None)
    what = found or f"an unknown decode head (modules {sorted(names)[:6]})"
    raise ConversionError(f"the checkpoint's decode head is {what}, which segattn does not have; "
                          f"supported mmseg heads: {', '.join(f'{c} (head={h})' for c, h in SUPPORTED.items())}")


def _head_rules(state: dict[str, Tensor], kind: str) -> tuple[list, dict, list[str]]:
    if kind == "CCHead":
        if f"{D}.conv_cat.conv.weight" not in state:
            raise ConversionError("CCHead without concat_input is not supported (segattn's RCCAHead always concatenates)")
        rules = [*conv_bn(f"{D}.convs.0", "head.conva"), (f"{D}.cca.gamma.scale", "head.cca.gamma"),
                 (f"{D}.cca.", "head.cca."), *conv_bn(f"{D}.convs.1", "head.convb"),
                 *conv_bn(f"{D}.conv_cat", "head.bottleneck"), (f"{D}.conv_seg.", "head.cls.1.")]
        head = {"name": "ccnet", "channels": out_channels(state, f"{D}.conv_cat.conv.weight"),
                "inter_channels": out_channels(state, f"{D}.convs.0.conv.weight"), "recurrence": 2}
        return rules, head, ["recurrence=2 (mmseg CCHead's default; not stored in the weights)"]
    if kind == "DAHead":
        rules = [*conv_bn(f"{D}.pam_in_conv", "head.conv5a"), (f"{D}.pam.query_project.", "head.sa.query_conv."),
                 (f"{D}.pam.key_project.", "head.sa.key_conv."), (f"{D}.pam.value_project.", "head.sa.value_conv."),
                 (f"{D}.pam.gamma.scale", "head.sa.gamma"), (f"{D}.pam.gamma", "head.sa.gamma"),
                 *conv_bn(f"{D}.pam_out_conv", "head.conv51"), *conv_bn(f"{D}.cam_in_conv", "head.conv5c"),
                 (f"{D}.cam.gamma.scale", "head.sc.gamma"), (f"{D}.cam.gamma", "head.sc.gamma"),
                 *conv_bn(f"{D}.cam_out_conv", "head.conv52"), (f"{D}.pam_conv_seg.", "head.conv6.1."),
                 (f"{D}.cam_conv_seg.", "head.conv7.1."), (f"{D}.conv_seg.", "head.conv8.1.")]
        head = {"name": "danet", "channels": out_channels(state, f"{D}.pam_in_conv.conv.weight"),
                "pam_channels": out_channels(state, f"{D}.pam.query_project.weight")}
        return rules, head, []
    if kind == "NLHead":
        nl = f"{D}.nl_block"
        rules = [*conv_bn(f"{D}.convs.0", "head.conv_in"), (f"{nl}.g.conv.", "head.nl_block.g."),
                 (f"{nl}.theta.conv.", "head.nl_block.theta."), (f"{nl}.phi.conv.", "head.nl_block.phi."),
                 (f"{nl}.conv_out.", "head.nl_block.conv_out."), (f"{nl}.concat_project.conv.", "head.nl_block.concat_project."),
                 *conv_bn(f"{D}.convs.1", "head.conv_nl"), *conv_bn(f"{D}.conv_cat", "head.bottleneck"),
                 (f"{D}.conv_seg.", "head.cls.1.")]
        channels = out_channels(state, f"{D}.convs.0.conv.weight")
        mode = ("concatenation" if f"{nl}.concat_project.conv.weight" in state
                else "embedded_gaussian" if f"{nl}.theta.conv.weight" in state else "gaussian")
        head = {"name": "nonlocal", "channels": channels, "mode": mode, "use_scale": True,
                "reduction": channels // out_channels(state, f"{nl}.g.conv.weight")}
        notes = [f"mode={mode}, use_scale=true (mmseg NLHead's defaults; dot_product has the same tensors)"]
        return rules, head, notes
    if kind in _FAMILY_RULES:
        return _FAMILY_RULES[kind](state)
    num_convs = len({k.split(".")[2] for k in state if k.startswith(f"{D}.convs.")})
    rules = [r for i in range(num_convs) for r in conv_bn(f"{D}.convs.{i}", f"head.convs.{i}")]
    rules += [*conv_bn(f"{D}.conv_cat", "head.conv_cat"), (f"{D}.conv_seg.", "head.cls.1.")]
    head = {"name": "fcn", "channels": out_channels(state, f"{D}.convs.0.conv.weight"), "num_convs": num_convs,
            "concat_input": f"{D}.conv_cat.conv.weight" in state}
    return rules, head, []


def _concatenating(state: dict[str, Tensor], cls: str) -> None:
    if f"{D}.conv_cat.conv.weight" not in state:
        raise ConversionError(f"{cls} without concat_input is not supported (segattn's head always concatenates)")


def _gc_rules(state: dict[str, Tensor]) -> tuple[list, dict, list[str]]:
    _concatenating(state, "GCHead")
    gc = f"{D}.gc_block"
    rules = [*conv_bn(f"{D}.convs.0", "head.conv_in"), (f"{gc}.", "head.gc_block."),
             *conv_bn(f"{D}.convs.1", "head.conv_gc"), *conv_bn(f"{D}.conv_cat", "head.bottleneck"),
             (f"{D}.conv_seg.", "head.cls.1.")]
    channels = out_channels(state, f"{D}.convs.0.conv.weight")
    fusions = [f for f in ("channel_add", "channel_mul") if f"{gc}.{f}_conv.0.weight" in state]
    if not fusions:
        raise ConversionError(f"it has no {gc}.channel_add_conv / channel_mul_conv (a GCHead always has one)")
    planes = out_channels(state, f"{gc}.{fusions[0]}_conv.0.weight")
    head = {"name": "gcnet", "channels": channels, "ratio": planes / channels, "fusion_types": fusions,
            "pooling_type": "att" if f"{gc}.conv_mask.weight" in state else "avg"}
    return rules, head, []


def _dnl_rules(state: dict[str, Tensor]) -> tuple[list, dict, list[str]]:
    _concatenating(state, "DNLHead")
    dnl = f"{D}.dnl_block"
    rules = [*conv_bn(f"{D}.convs.0", "head.conv_in"), (f"{dnl}.g.conv.", "head.dnl_block.g."),
             (f"{dnl}.theta.conv.", "head.dnl_block.theta."), (f"{dnl}.phi.conv.", "head.dnl_block.phi."),
             (f"{dnl}.conv_out.", "head.dnl_block.conv_out."), (f"{dnl}.conv_mask.", "head.dnl_block.conv_mask."),
             *conv_bn(f"{D}.convs.1", "head.conv_dnl"), *conv_bn(f"{D}.conv_cat", "head.bottleneck"),
             (f"{D}.conv_seg.", "head.cls.1.")]
    channels = out_channels(state, f"{D}.convs.0.conv.weight")
    head = {"name": "dnl", "channels": channels, "mode": "embedded_gaussian", "use_scale": True, "temperature": 0.05,
            "reduction": channels // out_channels(state, f"{dnl}.g.conv.weight")}
    return rules, head, ["mode=embedded_gaussian, use_scale=true, temperature=0.05 (mmseg DNLHead's defaults; "
                         "not stored in the weights)"]


def _ema_rules(state: dict[str, Tensor]) -> tuple[list, dict, list[str]]:
    rules = [*conv_bn(f"{D}.ema_in_conv", "head.ema_in_conv"), (f"{D}.ema_mid_conv.conv.", "head.ema_mid_conv."),
             (f"{D}.ema_module.bases", "head.ema_module.bases"), *conv_bn(f"{D}.ema_out_conv", "head.ema_out_conv"),
             *conv_bn(f"{D}.bottleneck", "head.bottleneck"), *conv_bn(f"{D}.conv_cat", "head.conv_cat"),
             (f"{D}.conv_seg.", "head.cls.1.")]
    bases = state.get(f"{D}.ema_module.bases")
    if bases is None or bases.dim() != 3:
        raise ConversionError(f"it has no 1 x C x K {D}.ema_module.bases (an EMAHead always has them)")
    head = {"name": "emanet", "channels": out_channels(state, f"{D}.bottleneck.conv.weight"),
            "ema_channels": out_channels(state, f"{D}.ema_in_conv.conv.weight"), "num_bases": int(bases.shape[2]),
            "num_stages": 3, "momentum": 0.1, "concat_input": f"{D}.conv_cat.conv.weight" in state}
    return rules, head, ["num_stages=3, momentum=0.1 (mmseg EMAHead's zoo settings; not stored in the weights)"]


def _relation_rules(src: str, dst: str) -> list[tuple[str, str]]:
    """An mmseg ``SelfAttentionBlock``'s keys (ISA's ``output_project`` is segattn's ``out_project``)."""
    return [(f"{src}.output_project.", f"{dst}.out_project."), (f"{src}.", f"{dst}.")]


def _isa_rules(state: dict[str, Tensor]) -> tuple[list, dict, list[str]]:
    rules = [*conv_bn(f"{D}.in_conv", "head.in_conv"), *_relation_rules(f"{D}.global_relation", "head.isa.global_relation"),
             *_relation_rules(f"{D}.local_relation", "head.isa.local_relation"), *conv_bn(f"{D}.out_conv", "head.out_conv"),
             (f"{D}.conv_seg.", "head.cls.1.")]
    head = {"name": "isanet", "channels": out_channels(state, f"{D}.in_conv.conv.weight"),
            "isa_channels": out_channels(state, f"{D}.global_relation.key_project.0.conv.weight"), "down_factor": [8, 8]}
    return rules, head, ["down_factor=(8, 8) (mmseg ISAHead's zoo setting; not stored in the weights)"]


def _ocr_rules(state: dict[str, Tensor]) -> tuple[list, dict, list[str]]:
    """OCRNet is a cascade: ``decode_head.0`` the FCNHead on layer3 (soft regions), ``decode_head.1`` the OCRHead."""
    fcn, ocr = f"{D}.0", f"{D}.1"
    if f"{fcn}.convs.0.conv.weight" not in state or f"{fcn}.convs.1.conv.weight" in state or f"{fcn}.conv_cat.conv.weight" in state:
        raise ConversionError(f"OCRNet's first head {fcn} is not an FCNHead with one conv and no concat_input "
                              "(segattn's soft-region head; mmseg's zoo uses that)")
    rules = [*conv_bn(f"{fcn}.convs.0", "head.soft_region.convs.0"), (f"{fcn}.conv_seg.", "head.soft_region.cls.1."),
             *conv_bn(f"{ocr}.bottleneck", "head.bottleneck"),
             (f"{ocr}.object_context_block.bottleneck.", "head.ocr.bottleneck."),
             (f"{ocr}.object_context_block.", "head.ocr.attention."), (f"{ocr}.conv_seg.", "head.cls.1.")]
    head = {"name": "ocrnet", "channels": out_channels(state, f"{ocr}.bottleneck.conv.weight"),
            "ocr_channels": out_channels(state, f"{ocr}.object_context_block.value_project.conv.weight"),
            "soft_region_channels": out_channels(state, f"{fcn}.convs.0.conv.weight"), "soft_region_weight": 0.4}
    return rules, head, ["scale=1 (mmseg OCRHead's zoo setting; not stored in the weights)"]


def _ann_rules(state: dict[str, Tensor]) -> tuple[list, dict, list[str]]:
    for block in ("fusion", "context"):
        if any(k.startswith(f"{D}.{block}.stages.1.") for k in state):
            raise ConversionError(f"ANNHead with more than one query scale ({D}.{block}.stages.1) is not supported "
                                  "(segattn's ANN has mmseg's zoo setting query_scales=(1,))")
    rules = [(f"{D}.fusion.bottleneck.", "head.fusion.bottleneck."), (f"{D}.fusion.", "head.fusion."),
             *conv_bn(f"{D}.bottleneck", "head.bottleneck"), (f"{D}.context.", "head.context."),
             (f"{D}.conv_seg.", "head.cls.1.")]
    head = {"name": "ann", "channels": out_channels(state, f"{D}.bottleneck.conv.weight"),
            "project_channels": out_channels(state, f"{D}.fusion.stages.0.key_project.conv.weight"),
            "key_pool_scales": [1, 3, 6, 8]}
    return rules, head, ["key_pool_scales=(1, 3, 6, 8), query_scales=(1,) (mmseg ANNHead's zoo settings; "
                         "not stored in the weights)"]


def _psa_rules(state: dict[str, Tensor]) -> tuple[list, dict, list[str]]:
    rules = [(f"{D}.{part}.", f"head.psa.{part}.") for part in ("reduce", "reduce_p", "attention", "attention_p", "proj")]
    rules += [*conv_bn(f"{D}.bottleneck", "head.bottleneck"), (f"{D}.conv_seg.", "head.cls.1.")]
    cells = out_channels(state, f"{D}.attention.1.weight")
    side = math.isqrt(cells)
    if side * side != cells:
        raise ConversionError(f"PSAHead mask of {cells} cells is not square (segattn reads mmseg's square zoo masks)")
    bi = f"{D}.reduce_p.conv.weight" in state
    head = {"name": "psanet", "channels": out_channels(state, f"{D}.reduce.conv.weight"), "mask_size": [side, side],
            "psa_type": "bi-direction" if bi else "collect", "compact": False, "shrink_factor": 2,
            "normalization_factor": 1.0, "psa_softmax": True}
    notes = ["compact=false, shrink_factor=2, normalization_factor=1.0, psa_softmax=true (mmseg PSAHead's zoo "
             "settings; not stored in the weights)"]
    if not bi:
        notes.append("psa_type=collect (a one-branch file does not show collect or distribute)")
    return rules, head, notes


_FAMILY_RULES = {"PSAHead": _psa_rules, "ANNHead": _ann_rules, "GCHead": _gc_rules, "DNLHead": _dnl_rules, "EMAHead": _ema_rules, "ISAHead": _isa_rules,
                 "OCRHead": _ocr_rules}
_CLASSIFIERS = {"OCRHead": f"{D}.1.conv_seg.weight"}  # the final classifier where it is not decode_head.conv_seg


def _aux(state: dict[str, Tensor]) -> tuple[list, dict]:
    keys = [k for k in state if k.startswith("auxiliary_head.")]
    if not keys:
        return [], {"aux_weight": 0.0}
    if any(not re.match(r"auxiliary_head\.(convs\.0\.|conv_seg\.)", k) for k in keys):
        raise ConversionError("the auxiliary head is not an FCNHead with one conv (segattn's aux head); "
                              f"found {sorted({'.'.join(k.split('.')[:3]) for k in keys})[:5]}")
    rules = [*conv_bn("auxiliary_head.convs.0", "aux_head.convs.0"), ("auxiliary_head.conv_seg.", "aux_head.cls.1.")]
    return rules, {"aux_weight": 0.4, "aux_channels": out_channels(state, "auxiliary_head.convs.0.conv.weight")}


def plan(state: dict[str, Tensor], file_name: str) -> Plan:
    """Rename an mmseg state dict to segattn keys and infer the config (the output stride, which the tensors do
    not show, is chosen with the other release settings: :mod:`segattn.convert.release_settings`)."""
    kind = head_type(state)
    head_rules, head, notes = _head_rules(state, kind)
    aux_rules, model = _aux(state)
    renamed, unmatched, origin = rename(state, [("backbone.", "backbone."), *head_rules, *aux_rules])
    backbone = infer_backbone(renamed, "v1c")
    backbone.update(contract_dilation=True, dilate_basic_conv2=False)
    basic = ", BasicBlock's second conv undilated" if backbone["depth"] < 50 else ""
    notes.append(f"ResNetV1c, contract_dilation{basic}")
    return Plan("mmseg", backbone, head, model, renamed, unmatched,
                num_classes=out_channels(state, _CLASSIFIERS.get(kind, f"{D}.conv_seg.weight")), notes=notes, origin=origin)
