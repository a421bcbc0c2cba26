"""LightningDataModule wiring a dataset class, its transforms and DataLoaders."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_info
from torch.utils.data import DataLoader

from segattn.data.base import SegDataset
from segattn.data.batching import per_process_batch
from segattn.data.errors import DatasetError
from segattn.data.transforms import build_train_transform, build_val_transform
from segattn.utils.resumable import ResumableLoader, derive_seed, eval_sampler, seed_all, world


class WorkerInit:
    """DataLoader ``worker_init_fn``: one OpenCV thread per worker (workers already run in parallel), and
    Python, NumPy and torch seeded from (seed, rank, worker), so no two workers of any two processes share a
    stream. (Training augmentation is reseeded per sample on top: :class:`~segattn.utils.resumable.SeededItems`.)"""

    def __init__(self, seed: int, rank: int):
        self.seed, self.rank = int(seed), int(rank)

    def __call__(self, worker_id: int) -> None:
        cv2.setNumThreads(0)
        seed_all(derive_seed(self.seed, self.rank, worker_id))
        dataset = torch.utils.data.get_worker_info().dataset
        transform = getattr(getattr(dataset, "dataset", dataset), "transform", None)
        if hasattr(transform, "set_random_seed"):
            transform.set_random_seed(derive_seed(self.seed, self.rank, worker_id, 1))


class SegDataModule(pl.LightningDataModule):
    """Train/val/test DataLoaders for ``dataset(root=..., split=..., transform=...)``.

    Args:
        dataset: dataset class or ``functools.partial`` of one (Hydra ``_partial_: true``).
        root: dataset folder.
        train_transform / val_transform: kwargs of ``build_train_transform`` / ``build_val_transform``.
        batch_size / val_batch_size: per-process batch sizes (val > 1 needs equal image sizes).
        global_batch_size: the training batch over all processes instead of ``batch_size`` (which is then
            None); ``setup`` divides it by the trainer's world size.
        num_workers: DataLoader workers per process (0 = load in the main process).
        generate: optional ``generate(root)`` run by ``prepare_data`` when ``root`` does not exist.
        pin_memory: None = pin when CUDA is available.
    """

    def __init__(
        self,
        dataset: Callable[..., SegDataset],
        root: str | Path,
        train_transform: Optional[dict[str, Any]] = None,
        val_transform: Optional[dict[str, Any]] = None,
        batch_size: Optional[int] = 2,
        val_batch_size: int = 1,
        num_workers: int = 0,
        generate: Optional[Callable[[Path], Any]] = None,
        train_split: str = "train",
        val_split: str = "val",
        test_split: Optional[str] = None,
        pin_memory: Optional[bool] = None,
        global_batch_size: Optional[int] = None,
    ):
        super().__init__()
        self.dataset_factory = dataset
        self.root = Path(root).expanduser()
        self.train_transform_kwargs = dict(train_transform or {})
        self.val_transform_kwargs = dict(val_transform or {})
        self.batch_size, self.global_batch_size = batch_size, global_batch_size
        self._batch_setting = batch_size  # as given; batch_size becomes the per-process batch in setup
        self.val_batch_size = int(val_batch_size)
        self.num_workers = int(num_workers)
        self.generate = generate
        self.train_split, self.val_split = train_split, val_split
        self.test_split = test_split or val_split
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        cls = getattr(dataset, "func", dataset)
        self._class_names, self._palette = cls.class_info(**getattr(dataset, "keywords", {}))
        self.flip_pairs = tuple(tuple(p) for p in getattr(cls, "FLIP_PAIRS", ()))
        self.datasets: dict[str, SegDataset] = {}

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self._class_names)

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...]:
        return tuple(tuple(c) for c in self._palette)

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    def prepare_data(self) -> None:
        if self.generate is not None and not self.root.exists():
            print(f"generating the built-in data under {self.root} (first use; later runs read it there)")
            self.generate(self.root)

    def build(self, split: str, train: bool) -> SegDataset:
        """The dataset of ``split`` with the train or the val pipeline."""
        kwargs = self.train_transform_kwargs if train else self.val_transform_kwargs
        transform = build_train_transform(**kwargs, flip_pairs=self.flip_pairs) if train else build_val_transform(**kwargs)
        return self.dataset_factory(root=self.root, split=split, transform=transform)

    def setup(self, stage: Optional[str] = None) -> None:
        if stage in (None, "fit") and "train" not in self.datasets:
            self.resolve_batch_size()
            self.datasets["train"] = self.build(self.train_split, train=True)
            if len(self.datasets["train"]) < self.batch_size:
                raise DatasetError(
                    f"split '{self.train_split}' under {self.root} has {len(self.datasets['train'])} images, "
                    f"fewer than batch_size={self.batch_size}: with drop_last no batch would be trained"
                )
        if stage in (None, "fit", "validate") and "val" not in self.datasets:
            self.datasets["val"] = self.build(self.val_split, train=False)
        if stage in ("test", "predict") and "test" not in self.datasets:
            self.datasets["test"] = self.build(self.test_split, train=False)

    def resolve_batch_size(self) -> None:
        """The per-process ``batch_size`` for this trainer's world size (devices x nodes)."""
        processes = self.trainer.world_size if self.trainer is not None else 1
        self.batch_size = per_process_batch(self._batch_setting, self.global_batch_size, processes)
        if self.global_batch_size is not None:
            rank_zero_info(f"data.global_batch_size={self.global_batch_size} over {processes} processes: "
                           f"batch {self.batch_size} per process")

    def _loader(self, key: str, batch_size: int, train: bool) -> DataLoader:
        if key not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[key])
        workers = self.num_workers
        seed = torch.initial_seed() % 2**32  # seed_everything makes it equal on every process
        common = dict(num_workers=workers, pin_memory=self.pin_memory, persistent_workers=workers > 0,
                      worker_init_fn=WorkerInit(seed, world()[1]) if workers > 0 else None)
        dataset = self.datasets[key]
        if train:  # shuffled, drop_last, resumable mid-epoch, augmentation seeded per sample
            return ResumableLoader(dataset, batch_size, seed=seed, **common)
        return DataLoader(dataset, batch_size=batch_size, sampler=eval_sampler(dataset), **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.val_batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", self.val_batch_size, train=False)

