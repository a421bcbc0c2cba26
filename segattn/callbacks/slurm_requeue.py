"""SIGTERM agreed on by every process, then one checkpoint at the same step, then requeue (SLURM).

``srun`` delivers SIGTERM to the tasks with skew, or to one task only. A process that stops, or saves,
on its own signal leaves the others waiting in the next gradient all-reduce (a hang until the NCCL
timeout), and Lightning's own handler broadcasts from inside the handler, a collective only the
signalled process enters. Here the handler only sets a flag (no lock, no collective: a handler runs
wherever the main thread is, e.g. inside TensorBoard's writer, which holds a lock). At the end of every
training batch the flag is summed over the processes; when any process saw the signal, all of them
save ``hpc_ckpt_<n>.ckpt`` at that step, rank 0 runs ``scontrol requeue`` (under SLURM), and all stop.
A second signal after that changes nothing: it is ignored from the agreement on (``train.py`` keeps it
ignored until the process has exited).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_warn


def hpc_checkpoint_path(run_dir: Path) -> Path:
    """``run_dir/hpc_ckpt_<n+1>.ckpt`` after the highest ``n`` there, the file Lightning resumes from."""
    names = (re.fullmatch(r"hpc_ckpt_(\d+)\.ckpt", path.name) for path in run_dir.glob("hpc_ckpt_*.ckpt"))
    return run_dir / f"hpc_ckpt_{max((int(m[1]) for m in names if m), default=0) + 1}.ckpt"


def slurm_job_id() -> str:
    """``SLURM_ARRAY_JOB_ID_SLURM_ARRAY_TASK_ID`` for an array task, else ``SLURM_JOB_ID``."""
    if "SLURM_ARRAY_JOB_ID" in os.environ:
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ["SLURM_JOB_ID"]


class RequeueOnSigterm(pl.Callback):
    """Stop every process at the same step on SIGTERM; under SLURM save an hpc checkpoint there and requeue.

    The agreement costs one all-reduce of one number per training batch (none with one process).
    """

    def __init__(self):
        self.signalled = False
        self._previous = None  # the SIGTERM handler before fit (restored when fit ends normally)

    def _on_signal(self, signum, frame) -> None:
        self.signalled = True

    def _install(self) -> None:
        if signal.getsignal(signal.SIGTERM) != self._on_signal:
            signal.signal(signal.SIGTERM, self._on_signal)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._previous = signal.getsignal(signal.SIGTERM)
            self._install()

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()  # Lightning composed its own handler with this one when fit started: this one alone

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._install()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self._previous is not None:  # fit ended without a SIGTERM stop
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def agreed(self, trainer: pl.Trainer) -> int:
        """How many processes have seen SIGTERM (the same number on every process)."""
        flag = torch.tensor(float(self.signalled), device=trainer.strategy.root_device)
        if trainer.world_size > 1:
            flag = trainer.strategy.reduce(flag, reduce_op="sum")
        return int(flag.item())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        seen = self.agreed(trainer)
        if not seen:
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping: further signals change nothing
        print(f"SIGTERM seen by {seen} of {trainer.world_size} processes: rank {trainer.global_rank} stops after "
              f"step {trainer.global_step}", flush=True)
        if SLURMEnvironment.detect():
            path = hpc_checkpoint_path(Path(trainer.default_root_dir))
            trainer.save_checkpoint(path)  # every process takes part; rank 0 writes
            if trainer.is_global_zero:
                requeue(path, trainer.global_step)
        raise SIGTERMException()


def requeue(path: Path, step: int) -> None:
    """``scontrol requeue`` this job; a failure (no scontrol, an error) is a warning: the checkpoint stays."""
    job_id = slurm_job_id()
    try:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
        error = result.stderr.strip() if result.returncode else None
    except OSError as err:  # no scontrol on this node's PATH
        error = str(err)
    if error is None:
        rank_zero_info(f"SIGTERM: saved {path} at step {step} and requeued SLURM job {job_id}")
    else:
        rank_zero_warn(f"SIGTERM: saved {path}, but `scontrol requeue {job_id}` failed: {error}")
