"""Inference shared by evaluate, predict and the benchmarks: passes (whole / slide / scales / flip), inputs, predict."""
from segattn.inference.passes import crop_windows, predict_probabilities, slide_logits
from segattn.inference.predict import predict

__all__ = ["crop_windows", "predict", "predict_probabilities", "slide_logits"]
