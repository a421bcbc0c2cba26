"""scripts/make_synthetic.py, prepare_cityscapes.py (resumable, atomic) and dataset_stats.py."""
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from script_loader import load_script
from segattn.data.cityscapes import CityscapesDataset, label_ids_to_train_ids
from segattn.losses import CrossEntropy




def test_make_synthetic_writes_both_layouts(tmp_path):
    argv = ["--dataset", "both", "--root", str(tmp_path), "--num-train", "2", "--num-val", "1",
            "--height", "32", "--width", "64"]
    assert load_script("make_synthetic").main(argv) == 0
    assert len(list((tmp_path / "cityscapes/leftImg8bit/train").glob("*/*.png"))) == 2
    assert len(list((tmp_path / "ADEChallengeData2016/images/validation").glob("*.jpg"))) == 1


def test_prepare_cityscapes_converts_and_resumes(tiny_cityscapes, capsys):
    prepare = load_script("prepare_cityscapes")
    src = sorted((tiny_cityscapes / "gtFine/train").glob("*/*_labelIds.png"))
    done = Path(str(src[0]).replace("_labelIds", "_labelTrainIds"))
    done.write_bytes(b"already converted")  # an existing output is kept: the run resumes
    assert prepare.main([str(tiny_cityscapes), "--workers", "1"]) == 0
    assert "5 label files, 1 already converted, 4 to do" in capsys.readouterr().out
    assert done.read_bytes() == b"already converted"
    for path in src[1:]:
        converted = cv2.imread(str(path).replace("_labelIds", "_labelTrainIds"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(converted, label_ids_to_train_ids(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)))
    assert not list(tiny_cityscapes.rglob("*.tmp"))
    done.unlink()
    assert prepare.main([str(tiny_cityscapes), "--workers", "1"]) == 0
    assert "1 to do" in capsys.readouterr().out
    a, b = CityscapesDataset(tiny_cityscapes, "val"), CityscapesDataset(tiny_cityscapes, "val", use_train_ids=True)
    assert all(np.array_equal(a.load(i)[1], b.load(i)[1]) for i in range(len(a)))


def test_prepare_cityscapes_reports_bad_files(tiny_cityscapes, capsys):
    bad = next((tiny_cityscapes / "gtFine/val").glob("*/*_labelIds.png"))
    cv2.imwrite(str(bad), np.full((32, 64), 40, np.uint8))
    assert load_script("prepare_cityscapes").main([str(tiny_cityscapes), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: values [40] are not Cityscapes label ids" in err
    assert not Path(str(bad).replace("_labelIds", "_labelTrainIds")).exists()


def test_dataset_stats_table_csv_and_chart(small_cityscapes, tmp_path, capsys):
    argv = [f"data.root={small_cityscapes}", "--split", "val", "--out", str(tmp_path), "--workers", "0"]
    assert load_script("dataset_stats").main(argv) == 0
    with open(tmp_path / "CityscapesDataset_val.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows][:3] == ["road", "sidewalk", "building"] and len(rows) == 19
    masks = [CityscapesDataset(small_cityscapes, "val").load(i)[1] for i in range(2)]
    road = sum(int((m == 0).sum()) for m in masks)
    labelled = sum(int((m != 255).sum()) for m in masks)
    assert int(rows[0]["pixels"]) == road
    assert abs(sum(float(r["share_percent"]) for r in rows) - 100) < 1e-6 and labelled > 0
    assert (tmp_path / "CityscapesDataset_val.png").stat().st_size > 1000
    assert "road" in capsys.readouterr().out
    weights = json.loads((tmp_path / "CityscapesDataset_val_class_weight.json").read_text())
    shares = [float(r["share_percent"]) for r in rows]
    median = float(np.median([s for s in shares if s > 0]))
    assert weights["class_weight"][0] == pytest.approx(median / shares[0], rel=1e-5)  # road: median share / its share
    assert [w == 0 for w in weights["class_weight"]] == [s == 0 for s in shares] and weights["classes"][0] == "road"
    assert CrossEntropy(class_weight=str(tmp_path / "CityscapesDataset_val_class_weight.json")).class_weight.numel() == 19
