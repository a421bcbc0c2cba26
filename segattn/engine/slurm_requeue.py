"""SLURM pre-emption: on SIGTERM save ``hpc_ckpt_<n>.ckpt`` and requeue the job, at a step boundary.

Lightning's own ``SLURMEnvironment(auto_requeue=True)`` does this work inside the signal handler. A
handler runs wherever the main thread happens to be, and if that is inside TensorBoard's event writer
(which holds a non-reentrant lock), the handler's ``logger.finalize`` waits on that lock forever.
Here the handler only sets Lightning's ``received_sigterm`` flag (Lightning's notifier, always
installed); the loop raises ``SIGTERMException`` after the current batch, and this callback saves and
requeues from ``on_exception``, with the training state consistent.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytorch_lightning as pl
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
    """Under SLURM: when the loop stops on SIGTERM, save an hpc checkpoint (all ranks) and requeue (rank 0)."""

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not (isinstance(exception, SIGTERMException) and SLURMEnvironment.detect()):
            return
        path = hpc_checkpoint_path(Path(trainer.default_root_dir))
        trainer.save_checkpoint(path)
        if not trainer.is_global_zero:
            return
        job_id = slurm_job_id()
        try:
            result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True)
            error = result.stderr.strip() if result.returncode else None
        except OSError as err:  # no scontrol on this node's PATH
            error = str(err)
        if error is None:
            rank_zero_info(f"SIGTERM: saved {path} at step {trainer.global_step} and requeued SLURM job {job_id}")
        else:
            rank_zero_warn(f"SIGTERM: saved {path}, but `scontrol requeue {job_id}` failed: {error}")
