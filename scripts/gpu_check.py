"""The GPU check: what the CPU suite cannot show, in one run of a few minutes on one GPU.

1. every head trains ``--steps`` steps through the real Trainer at ``16-mixed`` and at ``bf16-mixed``
   with channels_last weights: the loss stays finite; GradScaler's scale (16-mixed), images/s over the
   steps after the first 5, peak GPU memory;
2. criss-cross attention: the fp16 (autocast) backward against fp32, relative error of every gradient;
3. SyncBatchNorm: a 1-process ``trainer=ddp`` run converts every BatchNorm and trains;
4. evaluation on the GPU (``evaluate.py`` path) equals evaluation on the CPU for the same checkpoint.

    python scripts/gpu_check.py                          # about 3-5 min on one recent GPU
    python scripts/gpu_check.py --heads ccnet --steps 10 # a part of it

Writes ``--out/results.md`` (default ``benchmarks/gpu/results.md``). Not part of the test suite: it needs
CUDA (``tests/test_gpu_check.py`` runs its pieces on CPU with tiny settings).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from segattn.cli.config import CONFIG_DIR, compose_train
from segattn.engine.launch import trainer_kwargs
from segattn.engine.module import SegmentationModule
from segattn.models.build import build_segmentor

HEADS = ("fcn", "ccnet", "danet", "nonlocal", "gcnet", "dnl", "emanet", "isanet", "ocrnet", "ann", "psanet")
PRECISIONS = ("16-mixed", "bf16-mixed")
OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu"


def run_overrides(args: argparse.Namespace, data_root: Path, head: str, precision: str) -> list[str]:
    """The train.py overrides of one check run (synthetic data generated under ``data_root``)."""
    h, w = args.size
    return [
        f"head={head}", f"backbone={args.backbone}", f"data.root={data_root}", "data.generate.num_train=16",
        "data.generate.num_val=4", f"data.generate.height={h}", f"data.generate.width={w}",
        f"data.train_transform.crop_size=[{h},{min(h, w)}]", f"data.batch_size={args.batch}", "data.val_batch_size=1",
        f"trainer.precision={precision}", f"trainer.max_steps={args.steps}", f"trainer.accelerator={args.accelerator}",
        "trainer.devices=1", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "trainer.val_check_interval=null", "+trainer.limit_val_batches=0",
        "+trainer.enable_checkpointing=false", "+trainer.logger=false", *args.extra,
    ]


class StepRecorder(pl.Callback):
    """Every step's loss and end time; the GradScaler scale at the end of the run."""

    def __init__(self):
        self.losses: list[float] = []
        self.times: list[float] = []
        self.scale: Optional[float] = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.losses.append(float(outputs["loss"]))
        self.times.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        self.scale = float(scaler.get_scale()) if scaler is not None else None


def fit(cfg, callbacks: Sequence[pl.Callback] = (), channels_last: bool = True,
        run_dir: Optional[Path] = None) -> tuple[SegmentationModule, pl.Trainer]:
    """Build data, model and Trainer from ``cfg`` (as ``train.py`` does) and fit."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = build_segmentor(cfg, datamodule.num_classes)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    module = SegmentationModule(model, instantiate(cfg.loss), datamodule.class_names, cfg.optim,
                                cfg.trainer.max_steps, run_config=OmegaConf.to_container(cfg, resolve=True))
    trainer = pl.Trainer(**trainer_kwargs(cfg.trainer), callbacks=list(callbacks),
                         default_root_dir=run_dir or tempfile.mkdtemp())
    trainer.fit(module, datamodule=datamodule)
    return module, trainer


def train_row(args: argparse.Namespace, data_root: Path, head: str, precision: str) -> dict:
    """One head at one precision: finite losses, scale, images/s, peak memory."""
    recorder = StepRecorder()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    _, trainer = fit(compose_train(run_overrides(args, data_root, head, precision)), [recorder])
    timed = recorder.times[5:] if len(recorder.times) > 6 else recorder.times
    seconds = (timed[-1] - timed[0]) / max(len(timed) - 1, 1) if len(timed) > 1 else float("nan")
    return {
        "head": head, "precision": precision, "steps": trainer.global_step,
        "finite": all(torch.isfinite(torch.tensor(recorder.losses)).tolist()),
        "first_loss": recorder.losses[0], "last_loss": recorder.losses[-1], "scale": recorder.scale,
        "img_per_s": args.batch / seconds if seconds > 0 else float("nan"),
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan"),
    }


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    """``|approx - exact| / |exact|`` (Frobenius norms, in float64)."""
    exact = exact.double()
    return float((approx.double() - exact).norm() / exact.norm().clamp_min(1e-30))


def criss_cross_backward_error(device: torch.device, dtype: torch.dtype, size: int = 65,
                               channels: int = 64) -> dict[str, float]:
    """Relative error of every gradient (input and parameters) of criss-cross attention under autocast
    ``dtype`` against fp32, for the same input and weights (gamma 1, so the attention path counts);
    gradients that vanish in exact arithmetic are left out."""
    from segattn.models.attention import CrissCrossAttention

    torch.manual_seed(0)
    block = CrissCrossAttention(channels).to(device)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(2, channels, size, size, device=device)
    grads = []
    for autocast in (False, True):
        block.zero_grad(set_to_none=True)
        inp = x.clone().requires_grad_()
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            out = block(inp)
        (out.float() * torch.linspace(-1, 1, out.numel(), device=device).view_as(out)).sum().backward()
        grads.append({"input": inp.grad, **{n: p.grad for n, p in block.named_parameters()}})
    largest = max(float(g.norm()) for g in grads[0].values())
    # a gradient that is 0 in exact arithmetic (the key bias: softmax ignores a shift) has no relative error
    return {name: relative_error(grads[1][name], grads[0][name]) for name in grads[0]
            if float(grads[0][name].norm()) > 1e-6 * largest}


def sync_batchnorm_row(args: argparse.Namespace, data_root: Path) -> dict:
    """A 1-process ``trainer=ddp`` run: every BatchNorm became SyncBatchNorm and the run trained."""
    if args.accelerator != "gpu":
        return {"checked": False, "why": "SyncBatchNorm needs CUDA"}
    overrides = ["trainer=ddp", *run_overrides(args, data_root, "ccnet", "16-mixed")]
    module, trainer = fit(compose_train([o for o in overrides if not o.startswith("trainer.max_steps")]
                                        + ["trainer.max_steps=5"]))
    kinds = [type(m).__name__ for m in module.model.modules() if "BatchNorm" in type(m).__name__]
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return {"checked": True, "strategy": type(trainer.strategy).__name__, "sync": kinds.count("SyncBatchNorm"),
            "plain": len(kinds) - kinds.count("SyncBatchNorm"), "steps": trainer.global_step}


def evaluation_row(args: argparse.Namespace, data_root: Path, work: Path) -> dict:
    """Train a few fp32 steps, save the checkpoint, evaluate it on ``args.device`` and on the CPU."""
    from segattn.cli.evaluate import evaluate

    cfg = compose_train(run_overrides(args, data_root, "ccnet", "32-true"))
    _, trainer = fit(cfg, run_dir=work / "eval_run")
    ckpt = work / "eval_run" / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    results = {}
    for device in dict.fromkeys([args.device, "cpu"]):
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            ev = compose("eval", overrides=[f"ckpt={ckpt}", f"eval.device={device}", f"eval.out={work / device}"])
        start = time.perf_counter()
        metrics = evaluate(ev)
        results[device] = {"mIoU": metrics["mIoU"], "aAcc": metrics["aAcc"], "seconds": time.perf_counter() - start}
    return results


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.3g}"
    return str(value)


def markdown(args: argparse.Namespace, rows: list[dict], cc: dict, sync: dict, evaluation: dict) -> str:
    """``results.md``: the training table, the criss-cross errors, SyncBatchNorm and evaluation."""
    device = torch.cuda.get_device_name() if args.accelerator == "gpu" else "CPU"
    h, w = args.size
    lines = [
        f"# GPU check: {device}, torch {torch.__version__}", "",
        f"ResNet {args.backbone}, synthetic Cityscapes {h}x{w}, batch {args.batch}, {args.steps} steps, "
        "channels_last weights; images/s over the steps after the first 5.", "",
        "| head | precision | steps | loss finite | first loss | last loss | GradScaler scale | img/s | peak MB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['head']} | {r['precision']} | {r['steps']} | {fmt(r['finite'])} | {fmt(r['first_loss'], 3)} | "
              f"{fmt(r['last_loss'], 3)} | {fmt(r['scale'], 0)} | {fmt(r['img_per_s'], 1)} | {fmt(r['peak_mb'], 0)} |"
              for r in rows]
    lines += ["", f"## Criss-cross attention, {args.cc_dtype} autocast backward vs fp32 (relative error)", "",
              "| gradient | relative error |", "|---|---:|"]
    lines += [f"| {name} | {error:.2e} |" for name, error in cc.items()]
    lines += ["", "## SyncBatchNorm through a 1-process trainer=ddp run", ""]
    lines.append(f"{sync['strategy']}: {sync['sync']} SyncBatchNorm, {sync['plain']} plain BatchNorm left, "
                 f"{sync['steps']} steps" if sync["checked"] else f"not checked: {sync['why']}")
    lines += ["", "## Evaluation (ccnet checkpoint of a short fp32 run)", "", "| device | mIoU | aAcc | seconds |",
              "|---|---:|---:|---:|"]
    lines += [f"| {d} | {r['mIoU']:.4f} | {r['aAcc']:.4f} | {r['seconds']:.1f} |" for d, r in evaluation.items()]
    if "cpu" in evaluation and len(evaluation) > 1:
        gap = max(abs(r["mIoU"] - evaluation["cpu"]["mIoU"]) for r in evaluation.values())
        lines += ["", f"Largest mIoU difference to the CPU evaluation: {gap:.4f} points."]
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=HEADS)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=[512, 1024], metavar=("H", "W"))
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (a smoke test of this script)")
    parser.add_argument("--cc-dtype", default=None, help="criss-cross autocast dtype (default float16 on cuda)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("extra", nargs="*", help="more train.py overrides for every run, e.g. head.channels=128")
    args = parser.parse_args(argv)
    args.accelerator = "gpu" if args.device.startswith("cuda") else "cpu"
    args.cc_dtype = args.cc_dtype or ("float16" if args.accelerator == "gpu" else "bfloat16")
    return args


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        raise SystemExit("gpu_check.py: error: expected a CUDA device, found none (use --device cpu for a smoke test)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_root = work / "cityscapes"
        rows = [train_row(args, data_root, head, precision) for head in args.heads for precision in args.precisions]
        cc = criss_cross_backward_error(torch.device(args.device), getattr(torch, args.cc_dtype))
        evaluation = evaluation_row(args, data_root, work)
        sync = sync_batchnorm_row(args, data_root)  # last: it leaves a (1-process) process group behind
    text = markdown(args, rows, cc, sync, evaluation)
    text += f"\nWall time of the whole check: {time.perf_counter() - start:.0f} s.\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text)
    print(text)
    return args.out / "results.md"


if __name__ == "__main__":
    main()
