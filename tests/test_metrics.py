"""metrics_from_confusion against hand computations with numpy."""
import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

from segattn.evaluation.metrics import format_table, metrics_from_confusion

IGNORE = 255


def numpy_confusion(gt: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Counts of (truth, prediction) over pixels whose truth is not 255."""
    conf = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(gt.ravel(), pred.ravel()):
        if t != IGNORE:
            conf[t, p] += 1
    return conf


def numpy_metrics(conf: np.ndarray) -> dict:
    """Reference computed class by class from the definitions."""
    k = conf.shape[0]
    iou, acc = [], []
    for c in range(k):
        tp = conf[c, c]
        fn = conf[c, :].sum() - tp
        fp = conf[:, c].sum() - tp
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else math.nan)
        acc.append(tp / (tp + fn) if tp + fn else math.nan)
    iou, acc = np.array(iou), np.array(acc)
    freq = conf.sum(1) / conf.sum()
    present = ~np.isnan(iou)
    return {
        "mIoU": 100 * np.nanmean(iou),
        "aAcc": 100 * np.trace(conf) / conf.sum(),
        "mAcc": 100 * np.nanmean(acc),
        "fwIoU": 100 * (freq[present] * iou[present]).sum(),
        "IoU": 100 * iou,
        "Acc": 100 * acc,
    }


def test_every_class_present_by_hand():
    conf = torch.tensor([[5, 1, 0], [2, 6, 1], [0, 0, 4]])
    m = metrics_from_confusion(conf, ["a", "b", "c"])
    # IoU = 5/8, 6/10, 4/5 ; Acc = 5/6, 6/9, 4/4 ; GT pixels 6, 9, 4 of 19
    assert m["mIoU"] == pytest.approx(100 * (5 / 8 + 6 / 10 + 4 / 5) / 3)
    assert m["aAcc"] == pytest.approx(100 * 15 / 19)
    assert m["mAcc"] == pytest.approx(100 * (5 / 6 + 6 / 9 + 1) / 3)
    assert m["fwIoU"] == pytest.approx(100 * (6 * 5 / 8 + 9 * 6 / 10 + 4 * 4 / 5) / 19)
    assert m["per_class"]["b"] == {"IoU": pytest.approx(60.0), "Acc": pytest.approx(100 * 6 / 9)}
    assert m["absent"] == []


def test_ignore_pixels_absent_and_predicted_only_classes():
    rng = np.random.default_rng(0)
    k = 6
    gt = rng.integers(0, 3, size=(4, 16, 16))  # classes 0..2 in truth
    pred = rng.integers(0, 4, size=(4, 16, 16))  # class 3 only predicted; 4, 5 nowhere
    gt[:, :3] = IGNORE
    pred[:, :3] = 5  # predictions on ignored pixels are free: class 5 stays absent
    conf = numpy_confusion(gt, pred, k)
    names = [f"c{i}" for i in range(k)]
    m = metrics_from_confusion(torch.from_numpy(conf), names)
    ref = numpy_metrics(conf)
    for key in ("mIoU", "aAcc", "mAcc", "fwIoU"):
        assert m[key] == pytest.approx(ref[key])
    for i in range(3):
        assert m["per_class"][names[i]]["IoU"] == pytest.approx(ref["IoU"][i])
        assert m["per_class"][names[i]]["Acc"] == pytest.approx(ref["Acc"][i])
    assert m["per_class"]["c3"] == {"IoU": 0.0, "Acc": None}
    assert m["per_class"]["c4"] == {"IoU": None, "Acc": None}
    assert m["absent"] == ["c4", "c5"]
    # the predicted-only class counts in mIoU (as 0), absent classes do not
    assert m["mIoU"] == pytest.approx(sum(ref["IoU"][:4]) / 4)


def test_torchmetrics_confusion_matches_numpy_with_ignore():
    rng = np.random.default_rng(1)
    k = 4
    gt = rng.integers(0, k, size=(2, 9, 11))
    gt[rng.random(gt.shape) < 0.2] = IGNORE
    pred = rng.integers(0, k, size=gt.shape)
    cm = MulticlassConfusionMatrix(num_classes=k, ignore_index=IGNORE)
    cm.update(torch.from_numpy(pred), torch.from_numpy(gt))
    np.testing.assert_array_equal(cm.compute().numpy(), numpy_confusion(gt, pred, k))


def test_class_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="3x3 to match 3 class names, got shape \\(2, 2\\)"):
        metrics_from_confusion(torch.eye(2), ["a", "b", "c"])


def test_format_table_lists_every_class_and_absent():
    conf = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    text = format_table(metrics_from_confusion(conf, ["road", "sidewalk", "train"]))
    assert "| mIoU |" in text and "| road" in text
    assert "| train    |    n/a |    n/a |" in text
    assert text.rstrip().endswith("train")


# --- Cityscapes extras -------------------------------------------------------------------------

from segattn.evaluation import cityscapes_extras as cs  # noqa: E402

IGNORED_LABEL_IDS = (0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30)


def test_category_iou_matches_official_definition_on_label_ids():
    """Official formula on a 34x34 label-id matrix with ignored rows == ours on the 19x19 train-id block."""
    rng = np.random.default_rng(2)
    train_conf = rng.integers(0, 50, size=(19, 19))
    train_conf[:, 16] = 0  # 'train' never predicted
    full = np.zeros((34, 34), dtype=np.int64)
    ids = np.array(cs.LABEL_IDS)
    full[np.ix_(ids, ids)] = train_conf
    full[np.ix_(IGNORED_LABEL_IDS, ids)] = rng.integers(0, 50, size=(len(IGNORED_LABEL_IDS), 19))
    category_of = {label_id: category for _, label_id, category in cs.CLASSES}
    result = cs.category_iou(torch.from_numpy(train_conf))
    for category in cs.CATEGORIES:
        inside = [i for i in ids if category_of[i] == category]
        outside = [i for i in ids if category_of[i] != category]  # not ignored, not in the category
        tp = full[np.ix_(inside, inside)].sum()
        fn = full[inside].sum() - tp
        fp = full[np.ix_(outside, inside)].sum()
        assert result["per_category"][category] == pytest.approx(100 * tp / (tp + fp + fn))
    assert result["mIoU_category"] == pytest.approx(np.mean(list(result["per_category"].values())))


def test_instance_iou_by_hand():
    person, rider, car, truck, road = 11, 12, 13, 14, 0
    inst = np.zeros((3, 6), dtype=np.int64)
    pred = np.full((3, 6), road)
    inst[0, :4] = 24001            # a person of 4 pixels: 3 predicted person, 1 rider
    pred[0, :3], pred[0, 3] = person, rider
    inst[1, :2] = 26001            # a car of 2 pixels, predicted truck (right category, wrong class)
    pred[1, :2] = truck
    inst[2, :3] = 29001            # a caravan: ignored in evaluation
    inst[2, 3:] = 26               # car pixels without an instance id (a group): not an instance
    pred[2, :] = car
    metric = cs.InstanceIoU()
    metric.update(pred, inst)
    conf = np.zeros((19, 19), dtype=np.int64)
    conf[rider, person] = 5        # false positives of person, inside 'human'
    conf[road, car] = 7            # false positives of car and of 'vehicle'
    out = metric.compute(conf)
    w_person, w_car = cs.AVG_INSTANCE_SIZE["person"] / 4, cs.AVG_INSTANCE_SIZE["car"] / 2
    assert out["per_class_iIoU"]["person"] == pytest.approx(100 * 3 * w_person / (4 * w_person + 5))
    assert out["per_class_iIoU"]["car"] == 0.0          # 0 TP, FN weighted, 7 FP
    assert out["per_class_iIoU"]["rider"] is None       # nothing at all
    assert out["iIoU"] == pytest.approx(out["per_class_iIoU"]["person"] / 2)
    assert out["per_category_iIoU"]["human"] == pytest.approx(100.0)  # rider->person FP stays in 'human'
    assert out["per_category_iIoU"]["vehicle"] == pytest.approx(100 * 2 * w_car / (2 * w_car + 7))


def test_instance_map_of_another_size_is_a_clear_error():
    with pytest.raises(ValueError, match="differ in size"):
        cs.InstanceIoU().update(np.zeros((2, 2), dtype=np.int64), np.zeros((3, 3), dtype=np.int64))
