"""Published recipes compose to the releases' settings; their pieces (PolyLR floor, mmseg head init, keep-ratio
test resize, aux loss, the checkpoint's test pipeline in evaluate.py) do what the releases do."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn

from segattn.cli.config import CONFIG_DIR
from segattn.data.transforms import build_val_transform
from segattn.engine.schedule import poly_schedule
from segattn.models.head_init import mmseg_head_init
from segattn.models.heads import FCNHead

FIXTURES = Path(__file__).parent / "fixtures" / "mmseg-tiny"
MMSEG = ["ccnet_r101_cityscapes_mmseg", "danet_r101_cityscapes", "nonlocal_r101_cityscapes",
         "ccnet_r101_ade20k", "danet_r101_ade20k", "nonlocal_r101_ade20k",
         "gcnet_r101_cityscapes", "gcnet_r101_ade20k", "dnl_r101_cityscapes", "dnl_r101_ade20k", "emanet_r101_cityscapes",
         "isanet_r101_cityscapes", "isanet_r101_ade20k", "ann_r101_cityscapes", "ann_r101_ade20k",
         "psanet_r101_cityscapes", "psanet_r101_ade20k"]


def _recipe(name: str) -> dict:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}", "data.root=/data"])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("name", MMSEG)
def test_mmseg_recipes_have_the_zoo_settings(name):
    cfg = _recipe(name)
    b, m, o = cfg["backbone"], cfg["model"], cfg["optim"]
    assert (b["depth"], b["stem"], b["contract_dilation"], b["output_stride"], b["pretrained"]) == \
        (101, "v1c", True, 8, "imagenet")
    assert (m["aux_weight"], m["aux_channels"], m["head_init"]) == (0.4, 256, "mmseg")
    assert (o["lr"], o["weight_decay"], o["power"], o["min_lr"]) == (0.01, 0.0005, 0.9, 0.0001)
    city = "cityscapes" in name
    assert m["align_corners"] is city and cfg["trainer"]["max_steps"] == (80000 if city else 160000)
    assert cfg["data"]["val_transform"]["resize_scale"] == ([2049, 1025] if city else [2048, 512])
    assert cfg["eval"]["mode"] == ("slide" if city else "whole")
    if city:
        assert cfg["eval"]["crop_size"] == [769, 769] and cfg["eval"]["stride"] == [513, 513]


def test_official_ccnet_recipe_builds_the_release_model():
    from segattn.models.build import build_segmentor

    cfg = _recipe("ccnet_r101_cityscapes")
    assert cfg["loss"]["_target_"].endswith("OhemCrossEntropy") and cfg["loss_per_output"]["aux"]["_target_"].endswith("CrossEntropy")
    assert (cfg["optim"]["weight_decay"], cfg["trainer"]["max_steps"], cfg["optim"]["min_lr"]) == (0.0001, 60000, 0.0)
    cfg["backbone"]["pretrained"] = None
    model = build_segmentor(cfg, 19)
    assert model.backbone.stem[9].ceil_mode and model.backbone.stem[6].out_channels == 128
    assert isinstance(model.head.conva[2], nn.LeakyReLU) and isinstance(model.aux_head.convs[0][2], nn.LeakyReLU)
    assert model.normalize.order == [2, 1, 0] and model.align_corners
    assert all(b.conv2.dilation == (2, 2) for b in model.backbone.layer3)


def _mmengine_poly_lrs(base: float, eta_min: float, power: float, end: int, steps: int) -> list:
    """mmengine's PolyParamScheduler as its source defines it: total_iters = end - begin - 1, the LR updated
    from the previous one by (1 - 1 / (total_iters - last_step + 1)) ** power, only while the step < end."""
    total, lrs, lr = end - 1, [base], base
    for step in range(1, steps):
        if step < end:
            lr = (lr - eta_min) * (1 - 1 / (total - step + 1)) ** power + eta_min
        lrs.append(lr)
    return lrs


@pytest.mark.parametrize("end, floor_at", [("last_step", 49), ("max_steps", 50)])
def test_poly_schedule_with_min_lr_and_its_end(end, floor_at):
    params = [nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD([{"params": [params[0]], "lr": 0.01}, {"params": [params[1]], "lr": 0.1}], lr=0.01)
    sched = poly_schedule(opt, max_steps=50, power=0.9, min_lr=1e-4, end=end)
    seen = []
    for _ in range(51):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    for t in (0, 10, 48, 49, 50):
        for base, lr in zip((0.01, 0.1), seen[t]):
            assert lr == pytest.approx((base - 1e-4) * (1 - min(t / floor_at, 1)) ** 0.9 + 1e-4)
    if end == "last_step":
        for group, base in enumerate((0.01, 0.1)):
            assert [lrs[group] for lrs in seen[:50]] == pytest.approx(_mmengine_poly_lrs(base, 1e-4, 0.9, 50, 50), rel=1e-12)
    with pytest.raises(ValueError, match=r"optim.poly_end='mmengine': expected one of \['max_steps', 'last_step'\]"):
        poly_schedule(opt, max_steps=50, end="mmengine")


def test_mmseg_head_init():
    torch.manual_seed(0)
    head = FCNHead(256, 19, channels=128, num_convs=2, concat_input=True)
    mmseg_head_init(head, 19)
    assert abs(head.cls[1].weight.std().item() - 0.01) < 0.001 and torch.all(head.cls[1].bias == 0)
    conv = head.convs[1][0]
    assert abs(conv.weight.std().item() / (2 / (128 * 9)) ** 0.5 - 1) < 0.05


def test_keep_ratio_resize_of_the_769_test_pipeline():
    transform = build_val_transform(resize_scale=[2049, 1025])
    out = transform(np.zeros((1024, 2048, 3), np.uint8), np.zeros((1024, 2048), np.uint8))
    assert out["image"].shape == (3, 1025, 2049) and out["mask"].shape == (1024, 2048)
    assert out["orig_size"].tolist() == [1024, 2048]
    out = build_val_transform(resize_scale=[2048, 512])(np.zeros((300, 400, 3), np.uint8), np.zeros((300, 400), np.uint8))
    assert out["image"].shape == (3, 512, 683)


def test_each_output_uses_its_own_loss():
    from segattn.engine.module import SegmentationModule

    model = nn.Identity()
    model.loss_weights = {"out": 1.0, "aux": 0.4, "pam": 1.0}
    main, aux = nn.CrossEntropyLoss(), nn.MSELoss()
    module = SegmentationModule(model, main, ["a", "b"], {"lr": 0.1}, 10, output_criteria={"aux": aux})
    assert module._criterion("aux") is aux and module._criterion("out") is main and module._criterion("pam") is main
    plain = SegmentationModule(model, main, ["a", "b"], {"lr": 0.1}, 10)
    assert plain._criterion("aux") is main
    with pytest.raises(ValueError, match=r"no output named \['cam_typo'\].*\['aux', 'out', 'pam'\]"):
        SegmentationModule(model, main, ["a", "b"], {"lr": 0.1}, 10, output_criteria={"cam_typo": aux})


def test_evaluate_runs_a_converted_zoo_model_with_its_test_pipeline(tiny_cityscapes, tmp_path):
    from segattn.cli.convert import main as convert
    from segattn.cli.evaluate import evaluate

    stem = "nonlocal_r18-d8_769x769_80k_cityscapes_tiny-0000cccc"
    convert([str(FIXTURES / f"{stem}.pth"), str(tmp_path / "zoo.ckpt")])
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("eval", overrides=[f"ckpt={tmp_path / 'zoo.ckpt'}", f"data.root={tiny_cityscapes}",
                                         f"eval.out={tmp_path / 'report'}", "eval.device=cpu"])
    metrics = evaluate(cfg)
    settings = json.loads((tmp_path / "report" / "metrics.json").read_text())["settings"]
    assert settings["mode"] == "slide" and settings["crop_size"] == [769, 769] and settings["stride"] == [513, 513]
    assert 0 <= metrics["mIoU"] <= 100


def test_slide_windows_are_mmsegs_on_the_2049x1025_test_image():
    """mmseg's slide_inference grid: ``(h - crop + stride - 1) // stride + 1`` rows, the last shifted to the border."""
    from segattn.inference.passes import crop_windows

    def mmseg_grid(size, crop, stride):
        count = max(size - crop + stride - 1, 0) // stride + 1
        return [(max(min(i * stride + crop, size) - crop, 0), min(i * stride + crop, size)) for i in range(count)]

    expected = [(y1, y2, x1, x2) for y1, y2 in mmseg_grid(1025, 769, 513) for x1, x2 in mmseg_grid(2049, 769, 513)]
    assert crop_windows(1025, 2049, (769, 769), (513, 513)) == expected
    assert len(expected) == 2 * 4


# What mmseg 1.2.2's configs say (configs/_base_/datasets/cityscapes_769x769.py, ade20k.py, schedules/
# schedule_80k.py, schedule_160k.py, models/*_r50-d8.py: CrossEntropyLoss without avg_non_ignore), written out.
MMSEG_SOURCE = {
    "cityscapes": dict(scale=(2049, 1025), crop=(769, 769), ratio_range=(0.5, 2.0), cat_max_ratio=0.75, flip=0.5, max_iters=80000,
                       val_interval=8000, test="slide", batch=8),
    "ade20k": dict(scale=(2048, 512), crop=(512, 512), ratio_range=(0.5, 2.0), cat_max_ratio=0.75, flip=0.5, max_iters=160000,
                   val_interval=16000, test="whole", batch=16),
}


@pytest.mark.parametrize("name", MMSEG)
def test_mmseg_recipes_build_the_sources_loss_transform_and_schedule(name):
    from segattn.data.mmseg_augment import MmsegAugment
    from segattn.data.transforms import build_train_transform
    from segattn.engine.components import instantiate_one
    from segattn.engine.module import SegmentationModule

    source = MMSEG_SOURCE["cityscapes" if "cityscapes" in name else "ade20k"]
    cfg = _recipe(name)
    assert cfg["trainer"]["val_check_interval"] == source["val_interval"]
    assert cfg["eval"]["mode"] == source["test"] and cfg["data"]["global_batch_size"] == source["batch"]

    # loss: sum of the pixel losses over ALL pixels of the batch (avg_non_ignore=False), ignore 255
    torch.manual_seed(0)
    logits, target = torch.randn(2, 5, 6, 7, dtype=torch.float64), torch.randint(0, 5, (2, 6, 7))
    target[:, :2] = 255
    expected = torch.nn.functional.cross_entropy(logits, target, ignore_index=255, reduction="sum") / target.numel()
    assert torch.allclose(instantiate_one(cfg["loss"], "loss")(logits, target), expected, rtol=1e-12, atol=0)

    # transform: mmseg's transforms (tests/test_mmseg_augment.py) with the parameters of mmseg's pipeline
    steps = build_train_transform(**cfg["data"]["train_transform"]).transforms
    augment = steps[0]
    assert isinstance(augment, MmsegAugment)
    assert (augment.scale, augment.crop_size, augment.ratio_range, augment.cat_max_ratio, augment.flip_prob,
            augment.photometric) == (source["scale"], source["crop"], source["ratio_range"], source["cat_max_ratio"],
                                     source["flip"], True)
    pad = next(s for s in steps if type(s).__name__ == "PadIfNeeded")
    assert (pad.min_height, pad.min_width, pad.fill, pad.fill_mask) == (*source["crop"], 0, 255)

    # schedule: mmengine PolyLR(eta_min=1e-4, power=0.9, begin=0, end=max_iters) at a few steps
    model = nn.Module()
    model.backbone, model.head = nn.Linear(1, 1), nn.Linear(1, 1)
    module = SegmentationModule(model, nn.CrossEntropyLoss(), ["a", "b"], cfg["optim"], cfg["trainer"]["max_steps"])
    scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    reference = _mmengine_poly_lrs(0.01, 1e-4, 0.9, source["max_iters"], source["max_iters"])
    for step in (0, 1, 1000, source["max_iters"] // 2, source["max_iters"] - 2, source["max_iters"] - 1):
        for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas):
            assert base * factor(step) == pytest.approx(reference[step], rel=1e-9), step
    assert reference[-1] == pytest.approx(1e-4, rel=1e-12)  # eta_min at the last iteration


def test_official_ccnet_recipe_builds_the_release_loss_and_schedule():
    """train.py of github.com/speedinghzl/CCNet: CriterionOhemDSN(thresh 0.7, min_kept 100000) = OHEM on the main
    output + 0.4 x CrossEntropyLoss(ignore_index=255) (mean over labelled pixels) on the dsn output;
    lr_poly = 0.01 * (1 - i / num_steps) ** 0.9 for i < num_steps = 60000."""
    from segattn.engine.components import instantiate_one
    from segattn.engine.module import SegmentationModule

    cfg = _recipe("ccnet_r101_cityscapes")
    main, aux = instantiate_one(cfg["loss"], "loss"), instantiate_one(cfg["loss_per_output"]["aux"], "aux")
    assert (main.thresh, main.min_kept, main.ignore_index, main.average) == (0.7, 100000, 255, "non_ignore")
    torch.manual_seed(0)
    logits, target = torch.randn(2, 5, 6, 7, dtype=torch.float64), torch.randint(0, 5, (2, 6, 7))
    target[:, :2] = 255
    expected = torch.nn.functional.cross_entropy(logits, target, ignore_index=255)
    assert torch.allclose(aux(logits, target), expected, rtol=1e-12, atol=0)
    assert cfg["model"]["aux_weight"] == 0.4
    model = nn.Module()
    model.backbone, model.head = nn.Linear(1, 1), nn.Linear(1, 1)
    module = SegmentationModule(model, main, ["a", "b"], cfg["optim"], cfg["trainer"]["max_steps"])
    scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    for step in (0, 1, 30000, 59999):
        for base, factor in zip(scheduler.base_lrs, scheduler.lr_lambdas):
            assert base * factor(step) == pytest.approx(0.01 * (1 - step / 60000) ** 0.9, rel=1e-12)


@pytest.mark.parametrize("name,head_shapes", [
    ("gcnet_r101_cityscapes", {"head.gc_block.channel_add_conv.0.weight": (128, 512, 1, 1),
                               "head.bottleneck.0.weight": (512, 2560, 3, 3)}),
    ("dnl_r101_ade20k", {"head.dnl_block.g.weight": (256, 512, 1, 1), "head.dnl_block.conv_mask.weight": (1, 512, 1, 1),
                         "head.cls.1.weight": (150, 512, 1, 1)}),
    ("emanet_r101_cityscapes", {"head.ema_module.bases": (1, 512, 64), "head.bottleneck.0.weight": (256, 512, 3, 3),
                                "head.conv_cat.0.weight": (256, 2304, 3, 3)}),
    ("isanet_r101_cityscapes", {"head.isa.global_relation.key_project.1.conv.weight": (256, 256, 1, 1),
                                "head.out_conv.0.weight": (512, 1024, 1, 1)}),
    ("ann_r101_ade20k", {"head.fusion.stages.0.query_project.conv.weight": (256, 2048, 1, 1),
                         "head.fusion.stages.0.key_project.conv.weight": (256, 1024, 1, 1),
                         "head.context.stages.0.out_project.weight": (512, 256, 1, 1)}),
    ("psanet_r101_cityscapes", {"head.psa.attention_p.1.weight": (97 * 97, 512, 1, 1),
                                "head.psa.proj.conv.weight": (2048, 1024, 1, 1), "head.bottleneck.0.weight": (512, 4096, 3, 3)}),
    ("psanet_r101_ade20k", {"head.psa.attention.1.weight": (66 * 66, 512, 1, 1)}),
    ("ocrnet_r101_cityscapes", {"head.soft_region.convs.0.0.weight": (256, 1024, 3, 3),
                                "head.ocr.attention.value_project.conv.weight": (256, 512, 1, 1),
                                "head.bottleneck.0.weight": (512, 2048, 3, 3)}),
])
def test_family_recipes_build_the_zoo_head_widths(name, head_shapes):
    """The R101 zoo files' decode-head tensors (mmseg names mapped by the converter) have these shapes."""
    from segattn.models.build import build_segmentor

    cfg = _recipe(name)
    cfg["backbone"]["pretrained"] = None
    state = build_segmentor(cfg, 150 if "ade20k" in name else 19).state_dict()
    assert {k: tuple(state[k].shape) for k in head_shapes} == head_shapes


def test_ocrnet_recipe_is_the_zoo_512x1024_batch_16_cascade_without_aux_head():
    cfg = _recipe("ocrnet_r101_cityscapes")
    m, d = cfg["model"], cfg["data"]
    assert (m["aux_weight"], m["align_corners"], m["head_init"]) == (0, False, "mmseg")
    assert d["global_batch_size"] == 16 and d["train_transform"]["crop_size"] == [512, 1024]
    assert d["val_transform"]["resize_scale"] == [2048, 1024] and cfg["eval"]["mode"] == "whole"
    assert cfg["head"]["soft_region_weight"] == 0.4 and cfg["trainer"]["max_steps"] == 80000


@pytest.mark.parametrize("name", ["ccnet_r101_voc12aug", "danet_r101_voc12aug", "nonlocal_r101_voc12aug",
                                  "ccnet_r101_voc12aug_40k", "danet_r101_voc12aug_40k", "nonlocal_r101_voc12aug_40k"])
def test_voc12aug_recipes_have_the_zoo_settings(name):
    cfg = _recipe(name)
    b, m, o, d = cfg["backbone"], cfg["model"], cfg["optim"], cfg["data"]
    assert (b["depth"], b["stem"], b["output_stride"], m["aux_weight"], m["align_corners"]) == (101, "v1c", 8, 0.4, False)
    assert (o["lr"], o["weight_decay"], o["min_lr"], d["global_batch_size"]) == (0.01, 0.0005, 0.0001, 16)
    assert d["dataset"]["_target_"].endswith("VOC12AugDataset") and d["train_transform"]["crop_size"] == [512, 512]
    assert d["val_transform"]["resize_scale"] == [2048, 512] and cfg["eval"]["mode"] == "whole"
    assert cfg["trainer"]["max_steps"] == (40000 if name.endswith("40k") else 20000)
    head = {"ccnet": "RCCAHead", "danet": "DANetHead", "nonlocal": "NonLocalHead"}[name.split("_")[0]]
    assert cfg["head"]["_target_"].endswith("." + head)


@pytest.mark.parametrize("name", ["ccnet_r101_pascal_context", "danet_r101_pascal_context_59", "nonlocal_r101_pascal_context_59"])
def test_pascal_context_recipes_have_the_zoo_settings(name):
    cfg = _recipe(name)
    o, d, e = cfg["optim"], cfg["data"], cfg["eval"]
    assert (o["lr"], o["weight_decay"], d["global_batch_size"], cfg["trainer"]["max_steps"]) == (0.004, 0.0001, 16, 40000)
    assert d["dataset"]["_target_"].endswith("PascalContext59Dataset" if name.endswith("59") else "PascalContextDataset")
    assert d["train_transform"]["crop_size"] == [480, 480] and d["val_transform"]["resize_scale"] == [520, 520]
    assert (e["mode"], e["crop_size"], e["stride"]) == ("slide", [480, 480], [320, 320])
    assert cfg["model"]["align_corners"] is False and cfg["backbone"]["output_stride"] == 8


@pytest.mark.parametrize("name", ["danet_r101_coco_stuff10k", "ccnet_r101_coco_stuff164k", "nonlocal_r101_coco_stuff10k"])
def test_coco_stuff_recipes_have_the_zoo_settings(name):
    cfg = _recipe(name)
    o, d = cfg["optim"], cfg["data"]
    assert (o["lr"], o["weight_decay"], d["global_batch_size"]) == (0.01, 0.0005, 16)
    assert cfg["trainer"]["max_steps"] == (20000 if name.endswith("10k") else 80000)
    assert d["dataset"]["_target_"].endswith("COCOStuff10kDataset" if name.endswith("10k") else "COCOStuff164kDataset")
    assert d["val_transform"]["resize_scale"] == [2048, 512] and cfg["eval"]["mode"] == "whole"
