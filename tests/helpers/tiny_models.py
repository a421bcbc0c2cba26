"""Tiny Segmentors (ResNet-18 at width 8, heads at width 16) whose attention terms are switched on."""
import torch

import segattn
from segattn.models.attention.global_context import GlobalContextBlock
from segattn.models.attention.non_local import NonLocal2d

TINY = dict(backbone="resnet18", num_classes=3, base_channels=8, channels=16, aux_weight=0)
HEADS = {  # name -> create_model options: every head and every attention design
    "fcn": dict(head="fcn"),
    "ccnet": dict(head="ccnet"),
    "danet": dict(head="danet"),
    "nonlocal": dict(head="nonlocal"),
    "nonlocal_concatenation_subsampled": dict(head="nonlocal", mode="concatenation", sub_sample=True),
    "gcnet": dict(head="gcnet"),
    "gcnet_avg_add_mul": dict(head="gcnet", pooling_type="avg", fusion_types=["channel_add", "channel_mul"]),
    "dnl": dict(head="dnl"),
    "emanet": dict(head="emanet", ema_channels=16, num_bases=8),
    "isanet": dict(head="isanet", isa_channels=8, down_factor=[2, 2]),
    "ocrnet": dict(head="ocrnet", ocr_channels=8, soft_region_channels=8),
    "ann": dict(head="ann", project_channels=8, key_pool_scales=[1, 3]),
    "psanet": dict(head="psanet", mask_size=[9, 9]),
    "ccnet_cbam_aligned": dict(head="ccnet", attention="cbam", align_corners=True, output_stride=16),
    "danet_se": dict(head="danet", attention="se"),
}


def tiny_model(name: str, seed: int = 0) -> torch.nn.Module:
    """The ``HEADS[name]`` model in eval mode with gamma = 0.5, the (disentangled) non-local output BN at weight 1
    and the global context transforms' last convs random, so the attention changes the logits (all start at 0,
    which would hide a broken attention path)."""
    torch.manual_seed(seed)
    model = segattn.create_model(**{**TINY, **HEADS[name]})
    with torch.no_grad():
        for module in model.modules():
            if isinstance(getattr(module, "gamma", None), torch.nn.Parameter):
                module.gamma.fill_(0.5)
            if isinstance(module, NonLocal2d):
                module.conv_out.bn.weight.fill_(1.0)
            if isinstance(module, GlobalContextBlock):
                for transform in filter(None, (module.channel_add_conv, module.channel_mul_conv)):
                    torch.nn.init.normal_(transform[3].weight, std=0.1)
    return model.eval()
