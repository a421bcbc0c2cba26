"""Training batches that are a function of (seed, epoch, position), so a run resumes exactly at any step.

:class:`ResumableLoader` is the training DataLoader: each process reads its share of a (seed, epoch)
permutation (:class:`ResumableSampler`, DistributedSampler's order, one process included), Lightning
saves its position in every checkpoint and restores it before the first batch (the resumable-loader
protocol: ``state_dict`` / ``load_state_dict``, stored under ``loops.fit_loop.state_dict.combined_loader``),
and every sample's augmentation is seeded from (seed, rank, epoch, position in the epoch): the sampler
hands out ``(index, seed)`` pairs and :class:`SeededItems` reseeds the transform before loading. So the
crops differ across processes and across DataLoader workers, and are the same on a rerun and after a
resume, with or without worker processes.
"""
from __future__ import annotations

import random
from typing import Any, Iterator, Optional

import numpy as np
import torch
import torch.distributed as dist
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def derive_seed(*numbers: int) -> int:
    """A 32-bit seed mixed from ``numbers`` (a seed, a rank, counters) by NumPy's SeedSequence."""
    return int(np.random.SeedSequence([int(n) for n in numbers]).generate_state(1)[0])


def seed_all(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def world() -> tuple[int, int]:
    """(number of processes, this process's rank) of the initialised process group, else (1, 0)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class ResumableSampler(DistributedSampler):
    """This process's share of the (seed, epoch) permutation of ``dataset`` (shares padded to equal
    length, as DistributedSampler does) as ``(index, augmentation seed)`` pairs, the seed mixed from
    (seed, rank, epoch, position); the next iteration starts after ``skip`` of its indices."""

    def __init__(self, dataset: Dataset, seed: int):
        replicas, rank = world()
        super().__init__(dataset, num_replicas=replicas, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices, start, epoch = list(super().__iter__()), self.skip, self.epoch
        self.skip = 0
        return ((indices[i], derive_seed(self.seed, self.rank, epoch, i)) for i in range(start, len(indices)))


class SeededItems(Dataset):
    """``items[(index, seed)]`` is ``dataset[index]`` with the dataset's transform reseeded by ``seed`` first
    (when it has ``set_random_seed``), in whichever process loads it."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        transform = getattr(self.dataset, "transform", None)
        if hasattr(transform, "set_random_seed"):
            transform.set_random_seed(seed)
        return self.dataset[index]


class ResumableLoader(DataLoader):
    """Shuffled training DataLoader (``drop_last``) that continues mid-epoch exactly after a resume.

    Args:
        dataset: map-style dataset (its ``transform`` is reseeded per sample when it has ``set_random_seed``).
        batch_size: per-process batch size.
        seed: order and augmentation seed; default ``torch.initial_seed()``, which ``seed_everything``
            makes the same on every process (required: all processes must agree on the permutation).
        **kwargs: other DataLoader arguments (``num_workers``, ``pin_memory``, ``worker_init_fn``, ...).
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: Optional[int] = None, **kwargs: Any):
        seed = torch.initial_seed() % 2**32 if seed is None else int(seed)
        super().__init__(SeededItems(dataset), batch_size=batch_size, sampler=ResumableSampler(dataset, seed),
                         drop_last=True, **kwargs)
        self.seed = seed
        self.batches_done = 0  # batches handed out in the current epoch
        self._resume_at = 0  # batches of the epoch to skip at the next iteration (set by load_state_dict)

    def __iter__(self) -> Iterator[Any]:
        self.batches_done, self._resume_at = self._resume_at, 0
        self.sampler.skip = self.batches_done * self.batch_size  # before the workers prefetch indices
        return self._batches(super().__iter__())

    def _batches(self, iterator: Iterator[Any]) -> Iterator[Any]:
        for batch in iterator:
            self.batches_done += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, batches = int(state["epoch"]), int(state["batches"])
        if batches >= len(self):  # saved after the epoch's last batch: continue with the next epoch
            epoch, batches = epoch + 1, 0
        self.sampler.set_epoch(epoch)
        self._resume_at = batches


def eval_sampler(dataset: Dataset) -> Optional[DistributedSampler]:
    """Under DDP, this process's share of ``dataset`` in order, each item on exactly one process (no
    padding duplicates, so metrics summed over processes count every image once); else None (also when
    there are fewer items than processes: Lightning's padded sampler then keeps every process busy)."""
    replicas, rank = world()
    if replicas == 1 or len(dataset) < replicas:
        return None
    return UnrepeatedDistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=False)
