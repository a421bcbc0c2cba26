"""Global batch over the processes, DDP + SyncBatchNorm chosen by the device count."""
import pytest
from hydra import compose, initialize_config_dir

from segattn.cli.config import CONFIG_DIR
from segattn.data.batching import per_process_batch
from segattn.data.errors import DatasetError
from segattn.engine.launch import device_count, trainer_kwargs

RECIPES = {"ccnet_r101_cityscapes": 8, "danet_r101_cityscapes": 8, "nonlocal_r101_cityscapes": 8,
           "ccnet_r101_ade20k": 16, "danet_r101_ade20k": 16, "nonlocal_r101_ade20k": 16,
           "gcnet_r101_cityscapes": 8, "dnl_r101_cityscapes": 8, "emanet_r101_cityscapes": 8,
           "gcnet_r101_ade20k": 16, "dnl_r101_ade20k": 16, "isanet_r101_cityscapes": 8, "isanet_r101_ade20k": 16,
           "ann_r101_cityscapes": 8, "ann_r101_ade20k": 16, "psanet_r101_cityscapes": 8, "psanet_r101_ade20k": 16,
           "ocrnet_r101_cityscapes": 16}


def compose_train(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize("recipe, batch", sorted(RECIPES.items()))
def test_recipes_give_the_global_batch(recipe, batch):
    cfg = compose_train(f"experiment={recipe}", "data.root=/x")
    assert cfg.data.global_batch_size == batch and cfg.data.batch_size is None


def test_the_global_batch_is_divided_by_the_processes():
    assert per_process_batch(None, 8, processes=4) == 2
    assert per_process_batch(None, 8, processes=1) == 8
    assert per_process_batch(3, None, processes=4) == 3  # per process, as given
    with pytest.raises(DatasetError, match=r"global_batch_size=8 must be a positive multiple of the 3 training "
                                           r"processes \(devices x nodes\); found remainder 2"):
        per_process_batch(None, 8, processes=3)
    with pytest.raises(DatasetError, match="expected exactly one of data.batch_size"):
        per_process_batch(2, 8, processes=1)


def test_a_datamodule_splits_its_global_batch_over_the_trainer_world(small_cityscapes):
    from types import SimpleNamespace

    from hydra.utils import instantiate

    cfg = compose_train(f"data.root={small_cityscapes}", "data.batch_size=null", "data.global_batch_size=4")
    datamodule = instantiate(cfg.data)
    datamodule.trainer = SimpleNamespace(world_size=2)
    datamodule.setup("fit")
    assert datamodule.batch_size == 2 and datamodule.train_dataloader().batch_size == 2


@pytest.mark.parametrize("devices, expected", [(1, 1), (2, 2), ("3", 3), ([0, 1], 2), ("0,1", 2), ("auto", 1)])
def test_device_count_on_cpu(devices, expected):
    assert device_count(devices, "cpu") == expected


def test_more_than_one_device_selects_ddp_and_sync_batchnorm(monkeypatch):
    import pytorch_lightning as pl
    from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    one = trainer_kwargs(compose_train("trainer.accelerator=cpu").trainer)
    assert "strategy" not in one and one["sync_batchnorm"] is False
    two = trainer_kwargs(compose_train("trainer.accelerator=cpu", "trainer.devices=2").trainer)
    assert isinstance(two["strategy"], DDPStrategy) and two["strategy"]._ddp_kwargs == {
        "find_unused_parameters": False, "gradient_as_bucket_view": True}
    assert two["sync_batchnorm"] is False  # requested, then skipped: SyncBatchNorm needs CUDA
    trainer = pl.Trainer(**trainer_kwargs(compose_train("trainer.accelerator=cpu").trainer), logger=False,
                         enable_checkpointing=False)
    assert isinstance(trainer.strategy, SingleDeviceStrategy)


def test_sync_batchnorm_is_kept_on_cuda(monkeypatch):
    import segattn.engine.launch as launch

    monkeypatch.setattr(launch.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(launch.torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(launch.torch.cuda, "get_device_capability", lambda device=None: (8, 0))  # precision=auto asks
    kwargs = trainer_kwargs(compose_train("trainer.accelerator=gpu").trainer)
    assert kwargs["sync_batchnorm"] is True and isinstance(kwargs["strategy"], launch.DDPStrategy)
