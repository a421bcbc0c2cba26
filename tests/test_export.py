"""ONNX and TorchScript export of every head: the exported logits equal eager PyTorch at new input sizes."""
import json

import pytest
import torch
from helpers.tiny_models import HEADS, tiny_model

import segattn
from segattn.export import ExportError, export_model

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from segattn.export.runtime import OnnxRuntimeModel  # noqa: E402

EXPORT_SIZE = (64, 64)
SIZES = [(2, 49, 81), (1, 72, 40)]  # batch, height, width: neither is the export size


def inputs():
    torch.manual_seed(1)
    return [torch.randn(b, 3, h, w) for b, h, w in SIZES]


@pytest.mark.parametrize("name", sorted(HEADS))
def test_onnx_runtime_logits_equal_pytorch_at_other_sizes(name, tmp_path):
    model = tiny_model(name)
    onnx_model = OnnxRuntimeModel(export_model(model, tmp_path / "m.onnx", "onnx", example_size=EXPORT_SIZE))
    for x in inputs():
        with torch.no_grad():
            expected = model(x)
        got = onnx_model(x)
        assert got.shape == expected.shape == (x.shape[0], 3, *x.shape[-2:])
        assert (got - expected).abs().max() < 1e-4
    assert onnx_model.class_names == model.class_names and onnx_model.align_corners == model.align_corners


@pytest.mark.parametrize("name", sorted(HEADS))
def test_torchscript_logits_equal_pytorch_at_other_sizes(name, tmp_path):
    model = tiny_model(name)
    path = export_model(model, tmp_path / "m.pt", "torchscript", example_size=EXPORT_SIZE)
    extra = {"class_names": "", "align_corners": ""}
    scripted = torch.jit.load(str(path), _extra_files=extra)
    for x in inputs():
        with torch.no_grad():
            assert (scripted(x) - model(x)).abs().max() < 1e-4
    assert json.loads(extra["class_names"]) == model.class_names
    assert json.loads(extra["align_corners"]) == model.align_corners


def test_the_attention_term_matters_so_the_comparison_is_not_vacuous():
    model = tiny_model("ccnet")
    x = inputs()[1]
    with torch.no_grad():
        with_attention = model(x)
        model.head.cca.gamma.zero_()
        assert (model(x) - with_attention).abs().max() > 1e-3


def test_unsupported_options_are_refused_in_one_message(tmp_path):
    with pytest.raises(ExportError, match=r"head.nl_block uses scaled_dot_product_attention .* opset 14; got opset 11"):
        export_model(tiny_model("nonlocal"), tmp_path / "m.onnx", "onnx", opset=11)
    with pytest.raises(ExportError, match=r"head.dnl_block uses scaled_dot_product_attention .* opset 14; got opset 11"):
        export_model(tiny_model("dnl"), tmp_path / "m.onnx", "onnx", opset=11)
    with pytest.raises(ExportError, match=r"export format must be one of \['onnx', 'torchscript'\], got 'tflite'"):
        segattn.export_model(tiny_model("fcn"), tmp_path / "m.tflite", "tflite")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_file_that_is_not_onnx_is_one_clear_message(tmp_path):
    (tmp_path / "bad.onnx").write_text("not a model")
    with pytest.raises(ExportError, match="is not a readable ONNX model"):
        OnnxRuntimeModel(tmp_path / "bad.onnx")
