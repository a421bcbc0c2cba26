"""Measuring helpers (segattn.utils.profiling) and scripts/benchmark.py end to end on a tiny model."""
import csv
import subprocess
import sys
from functools import partial
from pathlib import Path

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from segattn.models.backbone import ResNetBackbone
from segattn.models.heads import FCNHead
from segattn.models.segmentor import Segmentor
from segattn.utils import profiling
from segattn.utils.device import DeviceError, resolve_device
from segattn.utils.precision import cpu_has_native_bf16, fastest_precision
from segattn.utils.profiling import count_flops, median_seconds, peak_memory_bytes, training_step
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]



def test_peak_memory_counts_live_tensors_only():
    def step():
        a = torch.ones(1000, 1000)  # 4 MB, alive with b
        b = a * 2
        del a, b
        torch.ones(500, 1000)  # 2 MB later: does not add to the peak

    assert 8.0e6 <= peak_memory_bytes(step, torch.device("cpu")) < 8.5e6


def test_median_seconds_runs_warmup_then_repeats():
    calls = []
    assert median_seconds(lambda: calls.append(1), torch.device("cpu"), warmup=2, repeats=3) >= 0
    assert len(calls) == 5
    with pytest.raises(ValueError, match="repeats"):
        median_seconds(lambda: None, torch.device("cpu"), warmup=0, repeats=0)


def test_median_seconds_warms_up_until_two_calls_agree(monkeypatch):
    clock, calls = [0.0], []
    monkeypatch.setattr(profiling, "time", SimpleNamespace(perf_counter=lambda: clock[0]))  # a clock the step moves

    def steps(durations):
        durations = iter(durations)

        def step():
            calls.append(1)
            clock[0] += next(durations)
        return step

    seconds = median_seconds(steps([5, 3, 1, 1.01, 2, 4, 9]), torch.device("cpu"), warmup=1, repeats=3,
                             max_warmup=10, tolerance=0.05)
    assert len(calls) == 7 and seconds == pytest.approx(4)  # 4 warm-up calls (until 1 and 1.01 agree), then 2, 4, 9 timed
    calls.clear()
    median_seconds(steps([2, 1] * 3), torch.device("cpu"), warmup=1, repeats=1, max_warmup=3, tolerance=0.05)
    assert len(calls) == 4  # never steady: the warm-up stops at max_warmup


def test_flops_count_matmuls_and_cpu_attention_kernels():
    linear = torch.nn.Linear(64, 32)
    assert count_flops(lambda: linear(torch.randn(8, 64)))["Global"] == 2 * 8 * 64 * 32
    q, k, v = torch.randn(1, 1, 50, 16), torch.randn(1, 1, 40, 16), torch.randn(1, 1, 40, 24)
    expected = 2 * 50 * 40 * 16 + 2 * 50 * 40 * 24  # q k^T and (weights) v
    assert count_flops(lambda: F.scaled_dot_product_attention(q, k, v))["Global"] == expected


def test_training_step_updates_every_parameter_including_the_aux_head():
    torch.manual_seed(0)
    model = Segmentor(ResNetBackbone(18), partial(FCNHead, channels=16), 3, aux_channels=8).eval()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step = training_step(model, torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32)),
                         torch.optim.SGD(model.parameters(), lr=0.1))
    step()  # switches to training mode itself (the benchmark calls it after timing inference)
    assert model.training
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


def test_precision_and_device_choices():
    bench = load_script("benchmark")
    cpu = torch.device("cpu")
    fastest = "bf16-mixed" if cpu_has_native_bf16() else "32-true"
    assert bench.resolve_precision("auto", cpu) == (fastest, torch.bfloat16 if fastest == "bf16-mixed" else None)
    assert bench.resolve_precision("16-mixed", cpu) == ("16-mixed", torch.float16)
    with pytest.raises(ValueError, match="precision must be"):
        bench.resolve_precision("fp8", cpu)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device is available"):
            resolve_device("cuda")


def test_benchmark_script_writes_tables_plot_and_profile(tmp_path):
    tiny = [f"heads.{h}.channels=16" for h in ("fcn", "ccnet_r2", "danet")]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "only=[fcn,ccnet_r2,danet]", "input_size=[32,32]",
         "batch_size=1", "warmup=0", "max_warmup=0", "repeats=1", "matmul_size=64", "model.aux_channels=8", "slide.crop_size=[24,24]",
         "slide.stride=[16,16]", f"out={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}", *tiny],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tag = f"cpu_{fastest_precision('cpu')}"  # precision=auto
    rows = list(csv.DictReader(open(tmp_path / f"results_{tag}.csv")))
    assert [r["head"] for r in rows] == ["fcn", "ccnet_r2", "danet"]
    for r in rows:
        assert float(r["train_img_s"]) > 0 and float(r["train_peak_mb"]) > 0 and float(r["slide_ms"]) > 0
        assert 0 < float(r["head_gflops"]) < float(r["gflops"]) and float(r["matmul_share_pct"]) > 0
    assert "| ccnet_r2 |" in (tmp_path / f"results_{tag}.md").read_text()
    assert (tmp_path / f"results_{tag}.png").stat().st_size > 0
    assert len(list(tmp_path.glob(f"profile_{tag}_*.txt"))) == 1


def test_attention_benchmark_runs_blocks_as_a_network_does(tmp_path, precision="bf16-mixed"):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_attention.py"), "--sizes", "9x9", "--devices", "cpu",
         "--methods", "criss-cross R=2,PAM", "--warmup", "0", "--repeats", "1", "--precision", precision,
         "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [(r["method"], r["precision"], r["channels_last"]) for r in rows] == [
        ("criss-cross R=2", precision, "True"), ("PAM", precision, "True")]  # channels-last under mixed precision
    assert all(float(r["peak_mb"]) > 0 for r in rows)
    assert f"cpu, {precision}, channels-last forward+backward" in (tmp_path / "results.md").read_text()


def test_attention_benchmark_update_replaces_only_the_rows_measured_again(tmp_path):
    from script_loader import load_script

    bench = load_script("benchmark_attention")
    row = lambda method, size, ms: {"device": "cpu", "precision": "32-true", "device_name": "cpu", "size": size,
                                    "positions": 81, "method": method, "time_ms": ms, "peak_mb": 1.0}
    old = [row("criss-cross R=2", "9x9", 5.0), row("PAM", "9x9", 7.0), row("PAM", "33x33", "")]
    with open(tmp_path / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(old[0]))
        writer.writeheader()
        writer.writerows(old)
    merged = bench.merge_rows(bench.read_rows(tmp_path / "results.csv"), [row("PAM", "9x9", 3.0), row("CAM", "9x9", 2.0)])
    assert [(r["method"], r["size"], r["time_ms"]) for r in merged] == [
        ("criss-cross R=2", "9x9", 5.0), ("PAM", "9x9", 3.0), ("PAM", "33x33", ""), ("CAM", "9x9", 2.0)]
    assert bench.read_rows(tmp_path / "missing.csv") == []


def test_benchmark_export_script_runs_on_a_tiny_input(tmp_path):
    import pytest

    pytest.importorskip("onnxruntime")
    from script_loader import load_script

    table = load_script("benchmark_export").main(["--backbone", "resnet18", "--output-stride", "16", "--size", "32", "48",
                                                  "--warmup", "0", "--repeats", "1", "--out", str(tmp_path / "t.md")])
    assert "| ccnet |" in table and "onnxruntime fp32" in table and (tmp_path / "t.md").read_text() == table


@pytest.mark.parametrize("methods, names, heads", [
    ("global context,disentangled,EM attention",
     ["global context (GCNet)", "disentangled non-local matmul", "disentangled non-local sdpa",
      "EM attention (EMANet; 64 bases x 3 stages)"], {"gcnet": "GCHead", "dnl": "DNLHead", "emanet": "EMAHead"}),
    ("interlaced,object context,APNB,AFNB,point-wise",  # PSANet's mask covers the 5x5 half-resolution map
     ["interlaced sparse (ISANet; 8 x 8 groups)", "object context (OCRNet; 19 regions)", "APNB (ANN; 110 pooled keys)",
      "AFNB (ANN; 110 pooled keys)", "point-wise spatial (PSANet; bi-direction, mask 97 x 97)"],
     {"isanet": "ISAHead", "ocrnet": "OCRHead", "ann": "ANNHead", "psanet": "PSAHead"}),
], ids=["gcnet-dnl-emanet", "isanet-ocrnet-ann-psanet"])
def test_the_family_rows_run_in_both_benchmarks(methods, names, heads, tmp_path):
    """The attention rows of the family's blocks at 9x9, and their heads in the head benchmark's config."""
    from hydra import compose, initialize_config_dir

    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_attention.py"), "--sizes", "9x9", "--devices", "cpu",
         "--methods", methods, "--warmup", "0", "--repeats", "1",
         "--precision", "32-true", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["method"] for r in rows] == names and all(float(r["peak_mb"]) > 0 for r in rows)
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("benchmark")
    assert {name: cfg.heads[name]._target_.rsplit(".", 1)[-1] for name in heads} == heads
