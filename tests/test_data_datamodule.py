"""SegDataModule: class info before setup, generation on first use, loaders, clear errors."""
import functools
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf.errors import MissingMandatoryValue

from segattn.data.cityscapes import CLASSES, PALETTE, CityscapesDataset
from segattn.data.datamodule import SegDataModule
from segattn.data.errors import DatasetError
from segattn.data.synthetic import generate_cityscapes


def _module(root, **kwargs):
    defaults = dict(
        dataset=functools.partial(CityscapesDataset), root=root,
        train_transform={"crop_size": [32, 48], "scale_range": [0.75, 1.5]}, val_transform={},
        batch_size=2, val_batch_size=2, num_workers=0,
    )
    return SegDataModule(**{**defaults, **kwargs})


def test_class_info_without_setup(tmp_path):
    dm = _module(tmp_path / "not-there")
    assert dm.class_names == CLASSES and dm.palette == PALETTE and dm.num_classes == 19


def test_prepare_data_generates_missing_root_then_loads(tmp_path):
    root = tmp_path / "gen"
    dm = _module(root, generate=functools.partial(generate_cityscapes, num_train=5, num_val=2, height=32, width=64))
    dm.prepare_data()
    assert (root / "leftImg8bit/train").is_dir()
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert len(batches) == 2  # 5 images, batch 2, drop_last
    assert batches[0]["image"].shape == (2, 3, 32, 48) and batches[0]["mask"].dtype == torch.int64
    val = next(iter(dm.val_dataloader()))
    assert val["image"].shape == (2, 3, 32, 64) and len(val["name"]) == 2


def test_prepare_data_leaves_an_existing_root_alone(tiny_cityscapes):
    def fail(root):
        raise AssertionError("must not regenerate")

    _module(tiny_cityscapes, generate=fail).prepare_data()


def test_workers_augment_differently(tiny_cityscapes):
    """albumentations' random state is forked as-is: without reseeding, both workers crop alike."""
    torch.manual_seed(0)
    dm = _module(tiny_cityscapes, num_workers=2, batch_size=1, train_transform={"crop_size": 16})
    dm.setup("fit")
    dm.datasets["train"].samples = dm.datasets["train"].samples[:1] * 4  # the same image 4 times
    crops = [b["image"] for b in dm.train_dataloader()]
    assert len(crops) == 4 and not torch.equal(crops[0], crops[1])  # first item of worker 0 and of worker 1


def test_error_from_worker_names_the_file(tiny_cityscapes):
    bad = tiny_cityscapes / "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png"
    bad.write_bytes(bad.read_bytes()[:-30])
    dm = _module(tiny_cityscapes, num_workers=1, val_batch_size=1)
    dm.setup("validate")
    with pytest.raises(DatasetError, match=f"{bad} is truncated"):
        next(iter(dm.val_dataloader()))


def test_batch_larger_than_split_is_an_error(tiny_cityscapes):
    with pytest.raises(DatasetError, match="has 3 images, fewer than batch_size=4"):
        _module(tiny_cityscapes, batch_size=4).setup("fit")


CONF = str(Path(__file__).resolve().parents[1] / "conf")


def _compose(*overrides):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(overrides=list(overrides))


@pytest.mark.parametrize("name, classes", [("synthetic", 19), ("cityscapes", 19), ("ade20k", 150), ("folder", 2)])
def test_data_configs_instantiate(name, classes, small_cityscapes):
    overrides = [f"+data={name}", f"data.root={small_cityscapes}"]
    if name == "folder":
        overrides.append("data.dataset.classes=[a,b]")
    dm = instantiate(_compose(*overrides).data)
    assert isinstance(dm, SegDataModule) and dm.num_classes == classes
    if name in ("synthetic", "cityscapes"):
        dm.setup("validate")
        assert len(dm.datasets["val"]) == 2


def test_cityscapes_config_without_root_is_a_clear_error():
    with pytest.raises(MissingMandatoryValue, match="root"):
        instantiate(_compose("+data=cityscapes").data)
