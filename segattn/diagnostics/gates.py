"""The learned gate of every attention block: how much of the attended signal reaches the output.

CCA, PAM and CAM add ``gamma * attended`` to their input, and non-local adds its output convolution
through a BatchNorm whose scale starts at zero: all start as the identity and engage only when
their gate leaves zero.
"""
from __future__ import annotations

from torch import nn

from segattn.models.attention import ChannelAttention, CrissCrossAttention, NonLocal2d, PositionAttention

GAMMA_BLOCKS = (CrissCrossAttention, PositionAttention, ChannelAttention)
ENGAGED_THRESHOLD = 1e-3  # |gate| below this after training: the block never engaged


def gate_name(module: nn.Module) -> str:
    """``"gamma"`` or ``"output BN scale"``: what the gate of ``module`` is."""
    return "gamma" if isinstance(module, GAMMA_BLOCKS) else "output BN scale"


def gated_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """``{module name: block}`` for every CCA, PAM, CAM and non-local block of ``model``."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (*GAMMA_BLOCKS, NonLocal2d))}


def gate_values(blocks: dict[str, nn.Module]) -> dict[str, float]:
    """``{name: gate}``: ``gamma`` of CCA/PAM/CAM (signed), the mean |weight| of non-local's output BN."""
    values = {}
    for name, block in blocks.items():
        if isinstance(block, GAMMA_BLOCKS):
            values[name] = float(block.gamma.detach().reshape(-1)[0])
        else:
            values[name] = float(block.conv_out.bn.weight.detach().abs().mean())
    return values


def never_engaged_message(name: str, block: nn.Module, largest: float, steps: int,
                          threshold: float = ENGAGED_THRESHOLD) -> str:
    """``"attention in head.cca never engaged: |gamma| < 1e-3 after 400 steps (largest seen 6.0e-04)"``."""
    limit = f"{threshold:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return (f"attention in {name} never engaged: |{gate_name(block)}| < {limit} after {steps} steps "
            f"(largest seen {largest:.1e})")
