"""Evaluation across processes (``torchrun --nproc_per_node=N evaluate.py ...``): shard, then sum."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Subset


def init_from_env() -> tuple[int, int]:
    """Join the process group that torchrun/SLURM describe in the environment; ``(rank, world_size)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def shard_loader(loader: DataLoader, rank: int, world: int) -> DataLoader:
    """The images ``rank, rank + world, ...`` of ``loader``'s dataset: every image exactly once overall
    (no padding duplicates, unlike ``DistributedSampler``)."""
    if world == 1:
        return loader
    subset = Subset(loader.dataset, range(rank, len(loader.dataset), world))
    return DataLoader(subset, batch_size=loader.batch_size, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      worker_init_fn=loader.worker_init_fn)


def sum_across(array: np.ndarray) -> np.ndarray:
    """Element-wise sum of a float array over all processes (identity in a single process)."""
    if not dist.is_initialized():
        return array
    tensor = torch.as_tensor(array, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()
