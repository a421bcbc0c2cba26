"""Precision chosen per device (segattn.utils.precision), and every attention block under bf16 autocast:
the features keep their dtype and memory format, energies stay in fp32, criss-cross keeps no projection."""
import pytest
import torch

from segattn.engine.launch import training_precision
from segattn.models.attention import (
    CBAM, AsymmetricFusion, AsymmetricPyramidNonLocal, ChannelAttention, CrissCrossAttention, DisentangledNonLocal2d,
    EMAttention, GlobalContextBlock, InterlacedSparseAttention, NonLocal2d, ObjectContextBlock,
    PointwiseSpatialAttention, PositionAttention, SqueezeExcitation,
)
from segattn.utils import precision
from segattn.utils.precision import autocast_dtype, cpuinfo_has_bf16, fastest_precision, inference_autocast, resolve_precision

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_fp16\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw avx512vl\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_cpuinfo_flags():
    assert cpuinfo_has_bf16(ZEN4) and cpuinfo_has_bf16(GRAVITON3)
    assert not cpuinfo_has_bf16(SKYLAKE)
    assert not cpuinfo_has_bf16("model name\t: bf16 lookalike\n")  # only the flags/Features lines count


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_cpu_gets_bf16_only_where_it_is_native(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert fastest_precision("cpu") == expected
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert resolve_precision("16-mixed", "cpu") == "16-mixed"  # an explicit value wins
    assert training_precision({"accelerator": "cpu", "precision": "auto"}) == expected
    assert training_precision({"accelerator": "cpu", "precision": "32-true"}) == "32-true"


@pytest.mark.parametrize("capability, expected", [((7, 0), "16-mixed"), ((7, 5), "16-mixed"), ((8, 0), "bf16-mixed"), ((9, 0), "bf16-mixed")])
def test_cuda_gets_bf16_from_compute_capability_8(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert fastest_precision("cuda:0") == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_precision({"accelerator": "gpu", "precision": "auto"}) == expected
    assert training_precision({"accelerator": "auto", "precision": "auto"}) == expected


def test_other_devices_and_bad_names():
    assert fastest_precision("mps") == "32-true"
    assert training_precision({"accelerator": "mps", "precision": "auto"}) == "32-true"
    assert autocast_dtype("bf16-mixed") == torch.bfloat16 and autocast_dtype("32-true") is None
    with pytest.raises(ValueError, match="precision must be one of"):
        inference_autocast("fp8", torch.device("cpu"))
    with inference_autocast("bf16-mixed", torch.device("cpu")):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.bfloat16
    with inference_autocast("32-true", torch.device("cpu")):
        assert torch.mm(torch.ones(2, 2), torch.ones(2, 2)).dtype == torch.float32


def _gated(block):
    for name, p in block.named_parameters():  # open every gate, so the attention term is not zero
        if name.endswith("gamma") or name.endswith("bn.weight"):
            torch.nn.init.constant_(p, 0.5)
    return block


def _global_context(**kwargs):
    block = GlobalContextBlock(32, **kwargs)
    for transform in filter(None, (block.channel_add_conv, block.channel_mul_conv)):
        torch.nn.init.normal_(transform[3].weight, std=0.1)
    return block


class _EMAResidual(torch.nn.Module):
    """``x + EMA(x)``: EM attention carries no gradient itself (as in EMAHead, the input's reaches it through a residual)."""

    def __init__(self):
        super().__init__()
        self.ema = EMAttention(32, num_bases=8)

    def forward(self, x):
        return x + self.ema(x)


class _TwoInput(torch.nn.Module):
    """A two-input block (OCRNet's regions, ANN's fusion) with its second input taken from the map."""

    def __init__(self, block, second):
        super().__init__()
        self.block, self.second = block, second

    def forward(self, x):
        return self.block(x, self.second(x)) if isinstance(self.block, ObjectContextBlock) else self.block(self.second(x), x)


BLOCKS = {
    "criss_cross": lambda: CrissCrossAttention(32),
    "pam": lambda: PositionAttention(32),
    "cam": ChannelAttention,
    **{f"nonlocal_{mode}_{'sdpa' if sdpa else 'matmul'}": (lambda m=mode, u=sdpa: NonLocal2d(32, mode=m, use_sdpa=u))
       for mode in ("gaussian", "embedded_gaussian", "dot_product", "concatenation") for sdpa in (False, True)},
    "nonlocal_sub": lambda: NonLocal2d(32, sub_sample=True),
    "se": lambda: SqueezeExcitation(32),
    "cbam": lambda: CBAM(32),
    "global_context": _global_context,
    "global_context_avg_add_mul": lambda: _global_context(pooling_type="avg", fusion_types=("channel_add", "channel_mul")),
    **{f"dnl_{'sdpa' if sdpa else 'matmul'}": (lambda u=sdpa: DisentangledNonLocal2d(32, use_sdpa=u)) for sdpa in (False, True)},
    "em_attention": _EMAResidual,
    "interlaced_sparse": lambda: InterlacedSparseAttention(32, 8, (4, 4)),
    "object_context": lambda: _TwoInput(ObjectContextBlock(32, 8), lambda x: x[:, :5]),
    "apnb": lambda: AsymmetricPyramidNonLocal(32, 8, (1, 3)),
    "afnb": lambda: _TwoInput(AsymmetricFusion(32, 32, 8, 32, (1, 3)), lambda x: x),
    "point_wise_spatial": lambda: PointwiseSpatialAttention(32, 16, mask_size=(7, 7)),
}


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("name", list(BLOCKS))
def test_bf16_features_keep_dtype_and_layout_through_every_block(name, memory_format):
    """Under autocast a block must not turn the bf16 map into fp32 (an fp32 gate promotes it), and must
    hand the next conv the layout it was given."""
    torch.manual_seed(0)
    block = _gated(BLOCKS[name]()).train()
    x = torch.randn(2, 32, 6, 7).to(torch.bfloat16).contiguous(memory_format=memory_format).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x)
    assert out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=memory_format)
    out.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("mode, tolerance", [("embedded_gaussian", 1e-6), ("gaussian", 1e-6)])
def test_non_local_explicit_energies_run_in_fp32_under_autocast(mode, tolerance):
    torch.manual_seed(0)
    block = NonLocal2d(32, mode=mode, use_sdpa=False)
    x = torch.randn(1, 32, 6, 7) * 3
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q, k, v = block._embeddings(x)
        _, weights = block(x, return_attention=True)
    q, k = q.to(v.dtype).float(), k.to(v.dtype).float()  # the bf16 embeddings (gaussian: raw x, cast as the block does)
    expected = (torch.bmm(q, k.transpose(1, 2)) * block.scale).softmax(-1)
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights, expected, rtol=0, atol=tolerance)  # bf16 energies are off by ~1e-2


def test_criss_cross_keeps_no_projection_for_backward():
    """Saved for backward over R=2 passes: each pass's input and its H + W weights per position, not its q/k/v."""
    torch.manual_seed(0)
    block = _gated(CrissCrossAttention(64))
    x = torch.randn(1, 64, 12, 10, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = block(block(x))
    params = sum(p.numel() * p.element_size() for p in block.parameters())
    per_pass = x.numel() * 4 + 12 * 10 * (12 + 10) * 4  # x and the weights, fp32
    qkv = 12 * 10 * (64 // 8 * 2 + 64) * 4
    assert sum(saved) <= 2 * (per_pass + params) < 2 * (per_pass + qkv)
    out.sum().backward()  # and the recomputation gives the gradients (checked against the loop reference elsewhere)
    assert x.grad.abs().sum() > 0


def test_criss_cross_channels_last_gradients_equal_nchw():
    torch.manual_seed(0)
    block = _gated(CrissCrossAttention(16)).double()
    x = torch.randn(2, 16, 5, 7, dtype=torch.float64)
    grads = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        xi = x.contiguous(memory_format=fmt).requires_grad_()
        out = block(xi)
        assert out.is_contiguous(memory_format=fmt)
        weight = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        grads.append(torch.autograd.grad(out, [xi, *block.parameters()], weight.contiguous(memory_format=fmt)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_segmentor_compile_reaches_the_training_forward():
    from functools import partial

    from segattn.models.backbone import ResNetBackbone
    from segattn.models.heads import FCNHead
    from segattn.models.segmentor import Segmentor

    compiled = []

    def backend(graph_module, example_inputs):
        compiled.append(graph_module)
        return graph_module.forward

    torch.manual_seed(0)
    model = Segmentor(ResNetBackbone(18), partial(FCNHead, channels=8), 3, aux_channels=8).eval()  # no dropout, fixed BN
    x = torch.randn(1, 3, 32, 32)
    expected = model.forward_train(x)
    model.compile(backend=backend)
    outputs = model.forward_train(x)
    assert compiled  # backbone and heads went through the compiler
    assert not any("_orig_mod" in n for n, _ in model.named_parameters())
    for name in expected:
        torch.testing.assert_close(outputs[name], expected[name])


@pytest.mark.parametrize("asked", ["32-true", "bf16-mixed", "auto"])
def test_evaluation_predicts_under_the_asked_precision(asked):
    from omegaconf import OmegaConf

    from segattn.evaluation.settings import EvaluationError, check_settings
    from segattn.inference.pipeline import predictor_passes
    from segattn.inference.predictor import Predictor

    class Probe(torch.nn.Module):
        seen = None

        def forward(self, x):
            Probe.seen = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else torch.float32
            return torch.nn.functional.conv2d(x, torch.ones(2, 3, 1, 1))  # 2 classes

    ev = OmegaConf.create({"mode": "whole", "crop_size": [8, 8], "stride": [8, 8], "scales": [1.0], "flip": False,
                           "precision": asked, "device": "cpu"})
    check_settings(ev)
    probe = Probe()
    probe.num_classes = 2
    predictor = Predictor(probe, torch.device("cpu"), **predictor_passes(ev))
    pred = predictor(torch.randn(1, 3, 8, 8), (8, 8))
    expected = resolve_precision(asked, "cpu")
    assert predictor.precision == expected and pred.shape == (1, 8, 8)
    assert Probe.seen == (torch.bfloat16 if expected == "bf16-mixed" else torch.float32)
    with pytest.raises(EvaluationError, match="eval.precision must be one of"):
        check_settings(OmegaConf.merge(ev, {"precision": "fp8"}))


def test_channels_last_under_mixed_precision_only():
    from segattn.utils.precision import use_channels_last

    assert use_channels_last("auto", "bf16-mixed") and use_channels_last("auto", "16-mixed")
    assert not use_channels_last("auto", "32-true")
    assert use_channels_last(True, "32-true") and not use_channels_last(False, "bf16-mixed")
    assert use_channels_last("true", "32-true") and not use_channels_last("false", "bf16-mixed")  # command-line strings
    with pytest.raises(ValueError, match="auto, true or false"):
        use_channels_last("yes", "32-true")
