"""Scaling out on this CPU machine: 2-process DDP (gloo), SLURM / torchrun environments, SIGTERM requeue,
kill-and-resume, bf16-mixed with every head, deterministic runs (tiny data, tiny models)."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch.utils.data import Dataset

from segattn.cli.config import CONFIG_DIR
from segattn.data.synthetic import generate_cityscapes
from segattn.engine.launch import trainer_kwargs
from helpers.training_state import assert_same_training_state
from segattn.utils.resumable import ResumableLoader, ResumableSampler, eval_sampler
from segattn.checkpoints import read_file

ROOT = Path(__file__).resolve().parents[1]
HEADS = ("fcn", "ccnet", "danet", "nonlocal")
SLURM_ONE_NODE = {
    "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "segattn", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_NNODES": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "node1",
}


def tiny(data_root: Path, run_dir: Path, steps: int, *extra: str) -> list[str]:
    return [
        f"data.root={data_root}", f"hydra.run.dir={run_dir}", f"trainer.max_steps={steps}",
        "trainer.val_check_interval=2", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "data.train_transform.crop_size=[32,32]",
        "data.batch_size=2", "data.val_batch_size=1", "checkpoint.every_n_steps=2",
        "head=fcn", "head.channels=16", "model.aux_channels=8", *extra,
    ]


def env(**extra: str) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}


def train(*overrides: str, **extra_env: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, env=env(**extra_env),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def start_and_signal(overrides: list[str], checkpoint: Path, signum: int, **extra_env: str) -> subprocess.Popen:
    """Start train.py, send ``signum`` once ``checkpoint`` exists, wait for the process to end."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT, env=env(**extra_env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before the signal:\n" + proc.stdout.read()[-3000:]
    proc.send_signal(signum)
    proc.wait(timeout=300)
    return proc


def ckpt(path: Path) -> dict:
    return read_file(path)


def losses(csv_file: Path) -> dict[int, float]:
    with open(csv_file) as f:
        return {int(row["step"]): float(row["train/loss"]) for row in csv.DictReader(f) if row.get("train/loss")}


def compose_train(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.fixture
def five_images(tmp_path) -> Path:
    """5 train images (2 batches of 2 per epoch: checkpoints every 3 steps fall mid-epoch) and 3 val images
    (an odd count: 2 DDP processes must not pad the val set with a duplicate) of 32x64."""
    return generate_cityscapes(tmp_path / "cs5", num_train=5, num_val=3, height=32, width=64, seed=1)


# ---------------------------------------------------------------------------------------------- DDP


def test_ddp_two_cpu_processes_sync_validation_like_single_process_evaluation(five_images, tmp_path):
    from segattn.cli.evaluate import evaluate

    run_dir = tmp_path / "ddp"
    out = train("trainer=ddp", "trainer.devices=2", *tiny(five_images, run_dir, steps=4))
    assert "MEMBER: 2/2" in out and "distributed_backend=gloo" in out
    assert out.count("trainer.sync_batchnorm skipped") == 1  # CPU: one line, from rank 0
    assert out.count("Run folder:") == 1 and out.count("| mIoU |") == 1  # after fit: rank 0 only
    last = ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 4
    synced = json.loads((run_dir / "metrics.json").read_text())
    assert synced["step"] == 4

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}", f"eval.out={tmp_path / 'ev'}",
                                          "eval.device=cpu"])
    single = evaluate(cfg)
    assert single["mIoU"] == pytest.approx(synced["mIoU"], abs=1e-9)
    assert single["aAcc"] == pytest.approx(synced["aAcc"], abs=1e-9)


def test_eval_sampler_is_none_without_a_process_group():
    assert eval_sampler(list(range(3))) is None


# ------------------------------------------------------------------------------------ SLURM, torchrun


@pytest.mark.parametrize("launcher, variables, expected", [
    ("slurm", SLURM_ONE_NODE, (1, 1, 0)),
    ("slurm", {**SLURM_ONE_NODE, "SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "2",
               "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_NODELIST": "node[1-2]"},
     (2, 2, 3)),
    ("torchrun", {"RANK": "1", "LOCAL_RANK": "1", "GROUP_RANK": "0", "LOCAL_WORLD_SIZE": "2", "WORLD_SIZE": "2",
                  "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29512", "TORCHELASTIC_RUN_ID": "t"}, (2, 1, 1)),
])
def test_launcher_environment_sets_ranks_devices_and_requeue(monkeypatch, launcher, variables, expected):
    import pytorch_lightning as pl
    from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)  # DDPStrategy sets it process-wide
    for key in [k for k in os.environ if k.startswith(("SLURM_", "TORCHELASTIC_"))]:
        monkeypatch.delenv(key)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    cfg = compose_train("trainer=ddp", "trainer.accelerator=cpu")
    trainer = pl.Trainer(**trainer_kwargs(cfg.trainer), logger=False, enable_checkpointing=False)
    environment = trainer.strategy.cluster_environment
    assert (trainer.num_devices, trainer.num_nodes, trainer.global_rank) == expected
    assert trainer.world_size == expected[0] * expected[1]
    assert trainer.strategy._layer_sync is None  # SyncBatchNorm skipped on CPU
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is False
    if launcher == "slurm":
        assert isinstance(environment, SLURMEnvironment)
        assert not environment.auto_requeue  # no work in the signal handler: RequeueOnSigterm does it
    else:
        assert isinstance(environment, TorchElasticEnvironment)


def test_hydra_slurm_launcher_config_runs_one_task_per_gpu_and_requeues_on_sigterm():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")  # optional extra: pip install -e '.[cluster]'
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=8"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.tasks_per_node == 8
    assert launcher.additional_parameters.signal.startswith("TERM@") and launcher.max_num_timeout == 0


def test_sbatch_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "slurm" / "train.sbatch")], check=True)


def test_sigterm_under_slurm_saves_requeues_and_the_requeued_job_resumes(five_images, tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (fake_bin / "scontrol").chmod(0o755)
    slurm = {**SLURM_ONE_NODE, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    run_dir, steps, same = tmp_path / "job", 12, ("trainer.deterministic=true",)
    overrides = tiny(five_images, run_dir, steps, *same)
    proc = start_and_signal(overrides, run_dir / "checkpoints" / "last.ckpt", signal.SIGTERM, **slurm)
    assert proc.returncode == 0
    step = ckpt(run_dir / "hpc_ckpt_1.ckpt")["global_step"]
    assert 2 <= step < steps
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]

    train(*overrides, **slurm)  # the requeued job: the same command
    train(*tiny(five_images, tmp_path / "full", steps, *same), **slurm)  # uninterrupted, the same length
    curve = losses(tmp_path / "full" / "logs" / "metrics.csv")
    assert losses(run_dir / "logs" / "metrics.csv") == {s: curve[s] for s in range(step, steps)}  # resumed at step
    assert_same_training_state(tmp_path / "full" / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "last.ckpt")


SIGTERM_WHILE_LOGGING = """
import os, signal, sys, threading
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.loggers import CSVLogger
from segattn.cli.config import CONFIG_DIR
from segattn.engine.launch import trainer_kwargs
from segattn.callbacks.slurm_requeue import RequeueOnSigterm

class LockingLogger(CSVLogger):  # like TensorBoard's event writer: a non-reentrant lock around writes
    lock = threading.Lock()
    def log_metrics(self, metrics, step=None):
        with self.lock:
            if step == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, with the lock held
            super().log_metrics(metrics, step)
    def finalize(self, status):
        with self.lock:
            super().finalize(status)

class Model(BoringModel):
    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("loss", out["loss"])
        return out

with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
    cfg = compose("train", overrides=["trainer.accelerator=cpu", "trainer.max_steps=50", "trainer.log_every_n_steps=1",
                                      "trainer.val_check_interval=null", "trainer.enable_progress_bar=false"])
trainer = pl.Trainer(**trainer_kwargs(cfg.trainer), callbacks=[RequeueOnSigterm()], default_root_dir=sys.argv[1],
                     logger=LockingLogger(sys.argv[1]), enable_checkpointing=False)
trainer.fit(Model())
"""


def test_sigterm_while_a_logger_holds_its_lock_neither_deadlocks_nor_loses_the_checkpoint(tmp_path):
    """Lightning's in-handler requeue calls ``logger.finalize`` inside the handler and hangs here."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (fake_bin / "scontrol").chmod(0o755)
    slurm = env(**SLURM_ONE_NODE, PATH=f"{fake_bin}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_LOGGING, str(tmp_path / "run")], cwd=ROOT, env=slurm,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hpc = ckpt(tmp_path / "run" / "hpc_ckpt_1.ckpt")
    # SIGTERM lands while step 4's metrics are logged (logged as step 3), after that batch's agreement point:
    # the next batch is completed and agreed on, then training stops
    assert hpc["global_step"] == 5
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]


def test_hpc_checkpoints_are_numbered_after_the_highest(tmp_path):
    from segattn.callbacks.slurm_requeue import hpc_checkpoint_path

    assert hpc_checkpoint_path(tmp_path).name == "hpc_ckpt_1.ckpt"
    for name in ("hpc_ckpt_2.ckpt", "hpc_ckpt_10.ckpt", "hpc_ckpt_x.ckpt"):
        (tmp_path / name).touch()
    assert hpc_checkpoint_path(tmp_path).name == "hpc_ckpt_11.ckpt"


def test_requeue_without_scontrol_is_a_warning(tmp_path, monkeypatch):
    from segattn.callbacks.slurm_requeue import requeue

    for key, value in SLURM_ONE_NODE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol here
    with pytest.warns(UserWarning, match="saved .*hpc_ckpt_1.ckpt, but `scontrol requeue 4242` failed"):
        requeue(tmp_path / "hpc_ckpt_1.ckpt", 7)


# ------------------------------------------------------------------------------ exact resume


def test_deterministic_runs_agree_and_a_sigkilled_run_resumes_exactly(five_images, tmp_path):
    steps, extra = 10, ("trainer.deterministic=true", "checkpoint.every_n_steps=3")
    full = tmp_path / "full"
    train(*tiny(five_images, full, steps, *extra))

    killed = tmp_path / "killed"
    overrides = tiny(five_images, killed, steps, *extra)
    start_and_signal(overrides, killed / "checkpoints" / "last.ckpt", signal.SIGKILL)
    saved = ckpt(killed / "checkpoints" / "last.ckpt")["global_step"]
    assert saved in (3, 6, 9)  # a periodic checkpoint (3: mid-epoch), never a half-written file
    train(*overrides, "ckpt_path=last")

    curve = losses(full / "logs" / "metrics.csv")
    before_kill = losses(killed / "logs" / "metrics_1.csv")  # the killed part, kept by the resumed run
    assert before_kill and all(curve[s] == before_kill[s] for s in before_kill)  # deterministic: equal losses
    after = losses(killed / "logs" / "metrics.csv")  # rows are logged at step 0 .. steps - 1
    assert sorted(curve) == list(range(steps)) and after == {s: curve[s] for s in range(saved, steps)}

    assert ckpt(full / "checkpoints" / "last.ckpt")["global_step"] == steps
    assert_same_training_state(full / "checkpoints" / "last.ckpt", killed / "checkpoints" / "last.ckpt")


class _Items(Dataset):
    """Index + a draw of a seeded "augmentation", to see the order and the augmentation stream."""

    class Transform:
        def set_random_seed(self, seed: int) -> None:
            self.generator = torch.Generator().manual_seed(seed)

    def __init__(self, n: int):
        self.n, self.transform = n, self.Transform()
        self.transform.set_random_seed(0)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor([i, torch.randint(1000, (1,), generator=self.transform.generator).item()])


def test_resumable_loader_continues_mid_epoch_and_epochs_differ():
    def loader():
        return ResumableLoader(_Items(7), batch_size=2, seed=3)

    reference = loader()
    epochs = []
    for epoch in range(2):
        reference.sampler.set_epoch(epoch)
        epochs.append([batch.clone() for batch in reference])
    assert len(epochs[0]) == 3 and not all(torch.equal(x, y) for x, y in zip(*epochs))

    first = loader()
    first.sampler.set_epoch(1)
    iterator = iter(first)
    next(iterator)
    state = first.state_dict()
    assert state == {"epoch": 1, "batches": 1}
    second = loader()
    second.load_state_dict(state)
    rest = list(second)
    assert len(rest) == 2 and all(torch.equal(x, y) for x, y in zip(rest, epochs[1][1:]))

    third = loader()
    third.load_state_dict({"epoch": 0, "batches": 3})  # saved after the last batch: next epoch from its start
    assert all(torch.equal(x, y) for x, y in zip(list(third), epochs[1]))

    with_workers = ResumableLoader(_Items(7), batch_size=2, seed=3, num_workers=2)  # workers prefetch indices
    with_workers.load_state_dict(state)
    assert [b.tolist() for b in with_workers] == [b.tolist() for b in epochs[1][1:]]  # same order and draws


def test_resumable_sampler_shards_cover_the_dataset(monkeypatch):
    import segattn.utils.resumable as resumable

    shards = []
    for rank in range(2):
        monkeypatch.setattr(resumable, "world", lambda rank=rank: (2, rank))
        sampler = ResumableSampler(list(range(6)), seed=0)
        sampler.set_epoch(2)
        shards.append(list(sampler))
    assert sorted(index for index, _ in shards[0] + shards[1]) == list(range(6))
    seeds = [seed for _, seed in shards[0] + shards[1]]
    assert len(set(seeds)) == 6  # an augmentation seed per (rank, position)


# --------------------------------------------------------------------------- precision, gradients


@pytest.mark.parametrize("head", HEADS)
def test_bf16_mixed_trains_every_head_and_every_parameter_gets_a_gradient(head, tiny_cityscapes, tmp_path):
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from segattn.engine.module import SegmentationModule
    from segattn.models.build import build_segmentor

    cfg = compose_train(f"head={head}", "head.channels=16", "model.aux_channels=8", f"data.root={tiny_cityscapes}",
                        "data.train_transform.crop_size=[32,32]", "data.batch_size=2")
    datamodule = instantiate(cfg.data)
    model = build_segmentor(cfg, datamodule.num_classes)
    outputs = model.forward_train(torch.randn(2, 3, 32, 32))
    mask = torch.randint(0, datamodule.num_classes, (2, 32, 32))
    sum(w * torch.nn.functional.cross_entropy(outputs[k], mask) for k, w in model.loss_weights.items()).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []  # find_unused_parameters=False holds
    model.zero_grad(set_to_none=True)

    module = SegmentationModule(model, instantiate(cfg.loss), datamodule.class_names, cfg.optim, max_steps=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = pl.Trainer(accelerator="cpu", devices=1, precision="bf16-mixed", max_steps=2, limit_val_batches=0,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss"])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    changed = {n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == {"backbone", "head", "aux_head"}
