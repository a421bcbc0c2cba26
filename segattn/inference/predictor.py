"""``Predictor``: the passes, precision and device of one evaluation or prediction run, timed."""
from __future__ import annotations

import time
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from segattn.inference.passes import predict_probabilities
from segattn.utils.precision import inference_autocast, resolve_precision, use_channels_last


class Predictor:
    """``B x 3 x h x w`` normalised images -> ``B x H x W`` class ids (long, on ``device``) at ``out_size``.

    ``model`` is a Segmentor or any callable with ``num_classes`` and ``align_corners`` (e.g. an
    ONNX Runtime model, always run in fp32). ``seconds`` sums the time of the model part.
    """

    def __init__(self, model, device: torch.device, precision: str = "auto", mode: str = "whole",
                 crop_size: Optional[Sequence[int]] = None, stride: Optional[Sequence[int]] = None,
                 scales: Sequence[float] = (1.0,), flip: bool = False, flip_pairs: Sequence[Sequence[int]] = ()):
        self.device, self.seconds, self.num_classes = device, 0.0, model.num_classes
        if isinstance(model, nn.Module):
            self.precision = resolve_precision(precision, device)  # auto: the device's fastest
            model = model.to(device)
            if use_channels_last("auto", self.precision):
                model = model.to(memory_format=torch.channels_last)
        else:
            self.precision = "32-true"
        self.model = model
        self.passes = dict(mode=mode, crop_size=tuple(crop_size) if crop_size else None,
                           stride=tuple(stride) if stride else None, scales=tuple(scales), flip=bool(flip),
                           flip_pairs=tuple(tuple(p) for p in flip_pairs))

    def __call__(self, image: Tensor, out_size: Sequence[int]) -> Tensor:
        start = time.perf_counter()
        with inference_autocast(self.precision, self.device):
            probs = predict_probabilities(self.model, image.to(self.device), **self.passes,
                                          num_classes=self.num_classes, out_size=tuple(out_size))
        pred = probs.argmax(1)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - start
        return pred
