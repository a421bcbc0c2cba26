"""Every head and every backbone attention option trains a few steps through the real train() of train.py."""
import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from segattn.cli.config import CONFIG_DIR
from segattn.cli.train import train


def compose_run(data_root, run_dir, *overrides):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True, overrides=[
            f"data.root={data_root}", f"hydra.run.dir={run_dir}", "hydra.job.num=0",
            "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.num_sanity_val_steps=0",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            "data.train_transform.crop_size=[32,32]", "data.batch_size=2", "data.val_batch_size=1",
            "head.channels=32", "model.aux_channels=8", *overrides,
        ])
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.mark.parametrize("overrides", [
    ["head=fcn"], ["head=ccnet"], ["head=danet"], ["head=nonlocal"],
    ["head=nonlocal", "head.mode=concatenation", "head.sub_sample=true"],
    ["head=gcnet"], ["head=dnl"], ["head=emanet", "head.ema_channels=16", "head.num_bases=8"],
    ["head=isanet", "head.isa_channels=8", "head.down_factor=[2,2]"],
    ["head=ocrnet", "head.ocr_channels=8", "head.soft_region_channels=8", "model.aux_weight=0"],
    ["head=ann", "head.project_channels=8"], ["head=psanet", "head.mask_size=[7,7]"],
    ["head=fcn", "backbone.attention=se"], ["head=fcn", "backbone.attention=cbam"],
], ids=lambda o: ",".join(o))
def test_head_trains_and_validates(tiny_cityscapes, tmp_path, overrides):
    cfg = compose_run(tiny_cityscapes, tmp_path / "run", *overrides)
    metrics = train(cfg)
    assert metrics["step"] == 2 and 0.0 <= metrics["mIoU"] <= 100.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["step"] == 2


ATTENTION = {  # tiny model name -> the attention blocks' classes whose every parameter must get a gradient
    "ccnet": ("CrissCrossAttention",), "danet": ("PositionAttention", "ChannelAttention"),
    "nonlocal": ("NonLocal2d",), "nonlocal_concatenation_subsampled": ("NonLocal2d",),
    "gcnet": ("GlobalContextBlock",), "gcnet_avg_add_mul": ("GlobalContextBlock",), "dnl": ("DisentangledNonLocal2d",),
    "isanet": ("InterlacedSparseAttention",), "ocrnet": ("ObjectContextBlock",),
    "ann": ("AsymmetricFusion", "AsymmetricPyramidNonLocal"), "psanet": ("PointwiseSpatialAttention",),
    "ccnet_cbam_aligned": ("CrissCrossAttention", "CBAM"), "danet_se": ("PositionAttention", "SqueezeExcitation"),
}


@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_loss_falls_and_every_attention_parameter_gets_a_nonzero_gradient(name):
    """With gamma (and the non-local output BN) set non-zero: at gamma = 0 the query / key gradients are exactly
    zero, which a ``grad is not None`` check would not notice."""
    import torch
    import torch.nn.functional as F
    from helpers.tiny_models import tiny_model

    model = tiny_model(name).train()
    for m in model.modules():  # no dropout: the loss of a fixed batch must fall step after step
        if isinstance(m, torch.nn.Dropout2d):
            m.p = 0.0
    torch.manual_seed(0)
    blocks = torch.randn(2, 3, 6, 6)  # a learnable task: the class of an 8x8 block is its strongest channel
    x, target = F.interpolate(blocks, scale_factor=8.0), F.interpolate(blocks, scale_factor=8.0).argmax(1)
    target[:, :4] = 255  # ignored pixels
    attention = [(n, p) for n, m in model.named_modules() if type(m).__name__ in ATTENTION[name]
                 for n, p in m.named_parameters(prefix=n)]
    assert attention
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(8):
        outputs = model.forward_train(x)
        loss = sum(w * F.cross_entropy(outputs[k], target, ignore_index=255) for k, w in model.loss_weights.items())
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            zero = [n for n, p in attention if p.grad is None or p.grad.abs().max() == 0]
            assert not zero, f"zero gradients: {zero}"
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0] and losses[1] < losses[0], losses
