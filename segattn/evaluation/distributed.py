"""Evaluation across processes (``torchrun --nproc_per_node=N evaluate.py ...`` or ``srun evaluate.py ...``):
join, shard, sum, leave."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from torch.utils.data import DataLoader, Subset

_OWNED = False  # whether this module created the process group (and so destroys it)


class SrunTasks:
    """The tasks ``srun`` started, from SLURM's variables alone (``--ntasks=N`` is enough, unlike
    Lightning's training environment, which asks for ``--ntasks-per-node``)."""

    def world_size(self) -> int:
        return int(os.environ["SLURM_NTASKS"])

    def global_rank(self) -> int:
        return int(os.environ["SLURM_PROCID"])

    def local_rank(self) -> int:
        return int(os.environ.get("SLURM_LOCALID", "0"))

    @property
    def main_address(self) -> str:
        return SLURMEnvironment.resolve_root_node_address(os.environ.get("SLURM_NODELIST", "127.0.0.1"))

    @property
    def main_port(self) -> int:  # as Lightning derives it for training: the job id's last 4 digits + 15000
        return int(os.environ.get("SLURM_JOB_ID", "0")[-4:]) + 15000


def launcher_environment():
    """torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``), else SLURM's when ``srun`` started
    this process (``SLURM_NTASKS``, ``SLURM_PROCID``, ``SLURM_LOCALID``; ``MASTER_ADDR`` / ``MASTER_PORT``
    when set, else the first node of the list and a port from the job id), else None."""
    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment()
    if SLURMEnvironment.detect() and "SLURM_PROCID" in os.environ:
        return SrunTasks()
    return None


def init_from_env(device: torch.device) -> tuple[int, int, torch.device]:
    """Join the process group that torchrun or srun describe; ``(rank, world_size, this process's device)``.

    The backend follows ``device`` (NCCL for CUDA, gloo otherwise, whatever else the machine has), and a
    CUDA process takes the GPU of its local rank *before* the group is created. :func:`shutdown` ends it.
    """
    global _OWNED
    environment = launcher_environment()
    if environment is None or environment.world_size() == 1 or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size(), device) if dist.is_initialized() else (0, 1, device)
    if device.type == "cuda":
        device = torch.device("cuda", environment.local_rank() if device.index is None else device.index)
        torch.cuda.set_device(device)
    os.environ.setdefault("MASTER_ADDR", environment.main_address)
    os.environ.setdefault("MASTER_PORT", str(environment.main_port))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=environment.global_rank(),
                            world_size=environment.world_size())
    _OWNED = True
    return dist.get_rank(), dist.get_world_size(), device


def shutdown() -> None:
    """Destroy the process group :func:`init_from_env` created (none created: nothing to do)."""
    global _OWNED
    if _OWNED and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED = False


def prepare_once(datamodule, rank: int) -> None:
    """``datamodule.prepare_data()`` on rank 0 only (it may generate or download), the others wait for it."""
    if rank == 0:
        datamodule.prepare_data()
    if dist.is_initialized():
        dist.barrier()


def shard_loader(loader: DataLoader, rank: int, world: int) -> DataLoader:
    """The images ``rank, rank + world, ...`` of ``loader``'s dataset: every image exactly once overall
    (no padding duplicates, unlike ``DistributedSampler``)."""
    if world == 1:
        return loader
    subset = Subset(loader.dataset, range(rank, len(loader.dataset), world))
    return DataLoader(subset, batch_size=loader.batch_size, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      worker_init_fn=loader.worker_init_fn)

