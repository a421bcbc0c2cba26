"""scripts/gpu_check.py without a GPU: its arguments, its helpers, and a tiny CPU run of the whole script."""
import pytest
import torch

from script_loader import load_script

gpu_check = load_script("gpu_check")


def test_defaults_cover_every_head_at_both_mixed_precisions():
    args = gpu_check.parse_args([])
    assert args.heads == ["fcn", "ccnet", "danet", "nonlocal", "gcnet", "dnl", "emanet", "isanet", "ocrnet",
                          "ann", "psanet"] and args.precisions == ["16-mixed", "bf16-mixed"]
    assert (args.steps, args.accelerator, args.cc_dtype) == (30, "gpu", "float16")
    assert args.out.parts[-2:] == ("benchmarks", "gpu")


def test_relative_error():
    exact = torch.tensor([3.0, 4.0])
    assert gpu_check.relative_error(exact, exact) == 0.0
    assert gpu_check.relative_error(exact + torch.tensor([0.5, 0.0]), exact) == pytest.approx(0.1)


def test_criss_cross_low_precision_backward_is_compared_for_every_gradient():
    errors = gpu_check.criss_cross_backward_error(torch.device("cpu"), torch.bfloat16, size=9, channels=16)
    assert {"input", "gamma"} <= set(errors) and len(errors) >= 4
    assert all(0 < e < 0.1 for e in errors.values()), errors


def test_the_whole_check_runs_on_cpu_with_tiny_settings(tmp_path):
    out = gpu_check.main(["--device", "cpu", "--heads", "fcn", "--precisions", "bf16-mixed", "--steps", "2",
                          "--batch", "2", "--size", "32", "64", "--backbone", "resnet18", "--out", str(tmp_path),
                          "head.channels=8", "model.aux_channels=8"])
    text = out.read_text()
    assert "| fcn | bf16-mixed | 2 | yes |" in text
    assert "not checked: SyncBatchNorm needs CUDA" in text and "| cpu |" in text
