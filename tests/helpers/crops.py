"""Run under ``torchrun --nproc_per_node=2`` (gloo): record which crop every training sample got.

One fixed image, so any difference between samples comes from the augmentation alone. Writes
``<out>/rank<r>.json``: ``[[epoch, position, worker, digest], ...]``.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, get_worker_info

from segattn.data.datamodule import SegDataModule


class SameImage(Dataset):
    """8 copies of one random 64x64 image with a two-class mask."""

    @classmethod
    def class_info(cls):
        return ("a", "b"), ((0, 0, 0), (255, 255, 255))

    def __init__(self, root, split, transform):
        rng = np.random.default_rng(0)
        self.transform = transform
        self.image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        self.mask = (rng.random((64, 64)) > 0.5).astype(np.uint8)

    def __len__(self):
        return 8

    def __getitem__(self, index):
        out = self.transform(image=self.image, mask=self.mask)
        return {"image": out["image"], "worker": get_worker_info().id}


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    pl.seed_everything(0, workers=True)
    datamodule = SegDataModule(SameImage, root=out, batch_size=1, num_workers=2,
                               train_transform={"crop_size": [24, 24], "scale_range": [0.5, 2.0]})
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    rows = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        for position, batch in enumerate(loader):
            digest = hashlib.sha1(batch["image"].numpy().tobytes()).hexdigest()[:16]
            rows.append([epoch, position, int(batch["worker"][0]), digest])
    (out / f"rank{dist.get_rank()}.json").write_text(json.dumps(rows))
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(Path(sys.argv[1]))
