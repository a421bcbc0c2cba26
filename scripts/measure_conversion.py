"""Conversion time and peak memory of a ResNet-101 zoo file: ``python scripts/measure_conversion.py [--keep DIR]``.

Writes a random mmseg-layout ``ccnet_r101-d8_769x769_80k_cityscapes`` checkpoint (the zoo's key names
and shapes: ResNetV1c-101, CCHead 512, aux FCNHead 256, 19 classes), then runs ``segattn-convert`` on it
in a child process and prints its wall time and peak resident memory (``ru_maxrss`` of the child).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TO_MMSEG = [("head.conva.0.", "decode_head.convs.0.conv."), ("head.conva.1.", "decode_head.convs.0.bn."),
            ("head.convb.0.", "decode_head.convs.1.conv."), ("head.convb.1.", "decode_head.convs.1.bn."),
            ("head.bottleneck.0.", "decode_head.conv_cat.conv."), ("head.bottleneck.1.", "decode_head.conv_cat.bn."),
            ("head.cca.gamma", "decode_head.cca.gamma.scale"), ("head.cca.", "decode_head.cca."),
            ("head.cls.1.", "decode_head.conv_seg."), ("aux_head.convs.0.0.", "auxiliary_head.convs.0.conv."),
            ("aux_head.convs.0.1.", "auxiliary_head.convs.0.bn."), ("aux_head.cls.1.", "auxiliary_head.conv_seg."),
            ("backbone.", "backbone.")]


def zoo_like_r101(path: Path) -> int:
    """Save a random ResNetV1c-101 + CCHead state dict under mmseg's names; returns its size in bytes."""
    from functools import partial

    from segattn.models.backbone import ResNetBackbone
    from segattn.models.heads import RCCAHead
    from segattn.models.segmentor import Segmentor

    model = Segmentor(ResNetBackbone(101, stem="v1c", contract_dilation=True), partial(RCCAHead, inter_channels=512), 19)
    state = {}
    for key, value in model.state_dict().items():
        old, new = next((o, n) for o, n in TO_MMSEG if key.startswith(o))
        state[new + key[len(old):]] = value.reshape(()) if key == "head.cca.gamma" else value
    from segattn.data.cityscapes import CLASSES, PALETTE

    torch.save({"meta": {"CLASSES": list(CLASSES), "PALETTE": [list(c) for c in PALETTE]}, "state_dict": state}, path)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="folder for the files (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        src = folder / "ccnet_r101-d8_769x769_80k_cityscapes_random.pth"
        size = zoo_like_r101(src)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "segattn.cli.convert", str(src), str(folder / "converted.ckpt")], check=True)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"ResNet-101 CCNet zoo file ({size / 2**20:.0f} MiB): converted in {seconds:.1f} s "
              f"(child process, imports included), peak resident memory {peak_mb:.0f} MiB")


if __name__ == "__main__":
    main()
