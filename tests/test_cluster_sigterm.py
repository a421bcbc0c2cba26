"""SIGTERM under 2 srun tasks (SLURM variables set by hand, gloo on CPU): only one task signalled, or the
second signal late. Both tasks stop at the same step within a bounded time, one hpc checkpoint is written,
rank 0 requeues, and the requeued job resumes. The run also checks DDP chosen by the task count alone and
data.global_batch_size divided by it."""
import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.training_state import assert_same_training_state

from segattn.data.synthetic import generate_cityscapes
from segattn.checkpoints import read_file

ROOT = Path(__file__).resolve().parents[1]
STOP = re.compile(r"SIGTERM seen by (\d) of 2 processes: rank (\d) stops after step (\d+)")


@pytest.fixture
def images(tmp_path) -> Path:
    return generate_cityscapes(tmp_path / "cs", num_train=5, num_val=2, height=32, width=64, seed=1)


def start_tasks(data: Path, run_dir: Path, steps: int, port: int, fake_bin: Path) -> list[subprocess.Popen]:
    """Two train.py processes as ``srun --ntasks-per-node=2`` would start them (no trainer=ddp)."""
    overrides = [
        "trainer.deterministic=true",
        f"data.root={data}", f"hydra.run.dir={run_dir}", f"trainer.max_steps={steps}", "trainer.accelerator=cpu",
        "trainer.val_check_interval=1000", "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1", "data.train_transform.crop_size=[32,32]", "data.batch_size=null",
        "data.global_batch_size=4", "data.val_batch_size=1", "checkpoint.every_n_steps=2", "head=fcn",
        "head.channels=8", "model.aux_channels=8",
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_", "WORLD_SIZE"))}
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "segattn", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "2",
             "SLURM_NNODES": "1", "SLURM_NODEID": "0", "SLURM_NODELIST": "127.0.0.1", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": str(port), "PATH": f"{fake_bin}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
             "PYTHONUNBUFFERED": "1"}
    return [subprocess.Popen([sys.executable, str(ROOT / "train.py"), *overrides], cwd=ROOT,
                             env={**base, **slurm, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(2)]


def finish(tasks: list[subprocess.Popen], seconds: float = 120) -> list[str]:
    """Outputs of both tasks; a task still running after ``seconds`` is a hang: kill both and fail."""
    deadline, outputs = time.monotonic() + seconds, []
    for task in tasks:
        try:
            outputs.append(task.communicate(timeout=max(deadline - time.monotonic(), 1))[0])
        except subprocess.TimeoutExpired:
            for t in tasks:
                t.kill()
            pytest.fail("a task hung after SIGTERM:\n" + "\n".join(t.communicate()[0][-2000:] for t in tasks))
    assert [task.returncode for task in tasks] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    return outputs


def wait_for(path: Path, tasks: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 240
    while not path.exists() and all(t.poll() is None for t in tasks) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), "\n".join(t.communicate()[0][-2000:] for t in tasks if t.poll() is not None)


def fake_scontrol(tmp_path: Path) -> Path:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (fake_bin / "scontrol").chmod(0o755)
    return fake_bin


def stopped_at(outputs: list[str]) -> int:
    """The step at which each rank stopped, checked equal across ranks."""
    stops = {int(m[2]): int(m[3]) for out in outputs for m in STOP.finditer(out)}
    assert sorted(stops) == [0, 1] and len(set(stops.values())) == 1, stops
    return stops[0]


def test_one_signalled_task_stops_both_at_the_same_step_and_the_requeued_job_resumes(images, tmp_path):
    fake_bin, run_dir, steps = fake_scontrol(tmp_path), tmp_path / "job", 16
    tasks = start_tasks(images, run_dir, steps, 29581, fake_bin)
    wait_for(run_dir / "checkpoints" / "last.ckpt", tasks)
    tasks[1].send_signal(15)  # rank 1 only
    outputs = finish(tasks)
    step = stopped_at(outputs)
    assert "data.global_batch_size=4 over 2 processes: batch 2 per process" in outputs[0]
    assert "DDP with SyncBatchNorm selected" in outputs[0]
    hpc = read_file(run_dir / "hpc_ckpt_1.ckpt")
    assert hpc["global_step"] == step and 2 <= step < steps
    assert sorted(run_dir.glob("hpc_ckpt_*.ckpt")) == [run_dir / "hpc_ckpt_1.ckpt"]
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]  # rank 0 only

    finish(start_tasks(images, run_dir, steps, 29582, fake_bin))  # the requeued job: the same command
    finish(start_tasks(images, tmp_path / "full", steps, 29584, fake_bin))  # uninterrupted, the same length
    curve = losses(tmp_path / "full" / "logs" / "metrics.csv")
    assert losses(run_dir / "logs" / "metrics.csv") == {s: curve[s] for s in range(step, steps)}  # resumed at step
    assert_same_training_state(tmp_path / "full" / "checkpoints" / "last.ckpt", run_dir / "checkpoints" / "last.ckpt")


def losses(csv_file: Path) -> dict[int, float]:
    with open(csv_file) as f:
        return {int(row["step"]): float(row["train/loss"]) for row in csv.DictReader(f) if row.get("train/loss")}


def test_a_late_second_signal_neither_hangs_nor_splits_the_step(images, tmp_path):
    fake_bin, run_dir = fake_scontrol(tmp_path), tmp_path / "job"
    tasks = start_tasks(images, run_dir, 400, 29583, fake_bin)
    wait_for(run_dir / "checkpoints" / "last.ckpt", tasks)
    tasks[0].send_signal(15)
    wait_for(run_dir / "hpc_ckpt_1.ckpt", tasks)
    if tasks[1].poll() is None:
        tasks[1].send_signal(15)  # after the agreement, while the tasks save, requeue and stop
    step = stopped_at(finish(tasks))
    assert read_file(run_dir / "hpc_ckpt_1.ckpt")["global_step"] == step
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
