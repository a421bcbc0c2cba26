"""Spread over seeds: mean and sample std by hand, overlapping intervals, and the compare scripts' tables."""
import math

import pytest

from segattn.evaluation.spread import overlap_sentences, overlapping_pairs, spread
from script_loader import load_script


def test_mean_and_sample_std_match_a_hand_computation():
    group = spread([90.0, 92.0, 97.0])  # mean 93; squared deviations 9, 1, 16 -> 26 / (3 - 1) = 13
    assert group.mean == pytest.approx(93.0)
    assert group.std == pytest.approx(math.sqrt(13.0))
    assert group.text() == "93.0 ± 3.6"
    assert spread([61.25]).std is None and spread([61.25]).text() == "61.2"


def test_non_finite_or_empty_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        spread([1.0, float("nan")])
    with pytest.raises(ValueError, match="finite"):
        spread([])


def test_overlap_is_decided_by_mean_plus_minus_std():
    groups = {"a": spread([90.0, 92.0]),   # 91 ± 1.41: [89.6, 92.4]
              "b": spread([93.0, 95.0]),   # 94 ± 1.41: [92.6, 95.4]  -> apart from a
              "c": spread([92.0, 93.0]),   # 92.5 ± 0.71: [91.8, 93.2] -> overlaps a and b
              "d": spread([28.0])}         # a single value: an interval of width 0
    assert overlapping_pairs(groups) == [("a", "c"), ("b", "c")]
    assert overlap_sentences(groups, "mIoU")[0].startswith("a and c overlap in mIoU (91.0 ± 1.4 vs 92.5 ± 0.7)")


def test_compare_heads_table_reports_mean_std_seeds_and_overlaps():
    script = load_script("compare_heads")
    rows = [{"head": head, "seed": seed, "mIoU": m, "colour_mIoU": c, "aAcc": 90.0, "train_s": 100.0,
             "train_peak_mb": 118.0}
            for head, seed, m, c in [("fcn", 0, 41.0, 28.0), ("fcn", 1, 43.0, 26.0), ("danet", 0, 92.0, 91.0),
                                     ("danet", 1, 90.0, 89.0), ("nonlocal", 0, 91.0, 90.0), ("nonlocal", 1, 93.0, 92.0)]]
    text = script.markdown(rows, "test recipe.")
    assert "mean ± std over seeds 0, 1" in text
    assert "| fcn | 42.0 ± 1.4 | 27.0 ± 1.4 | 28.0 / 26.0 |" in text
    assert "danet and nonlocal overlap in colour mIoU (90.0 ± 1.4 vs 91.0 ± 1.4)" in text
    assert "fcn and danet" not in text


def test_compare_heads_seeds_key_is_parsed_and_removed():
    script = load_script("compare_heads")
    assert script.parse_seeds(["seeds=[0,1,2]", "trainer.max_steps=5"]) == ([0, 1, 2], ["trainer.max_steps=5"])
    assert script.parse_seeds(["trainer.max_steps=5"]) == ([0], ["trainer.max_steps=5"])
    with pytest.raises(ValueError, match="seeds=\\[0,1,2\\]"):
        script.parse_seeds(["seeds=[a]"])


def _run_folder(folder, miou):
    import json

    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"mIoU": miou, "aAcc": 90.0, "mAcc": miou + 1, "per_class": {},
                                                     "step": 10}))
    return str(folder)


def test_compare_runs_groups_report_mean_std_and_overlap(tmp_path):
    from PIL import Image

    a = [_run_folder(tmp_path / "ccnet" / f"s{i}", v) for i, v in enumerate([90.0, 92.0, 94.0])]  # 92 ± 2
    b = [_run_folder(tmp_path / "danet" / f"s{i}", v) for i, v in enumerate([93.0, 95.0])]         # 94 ± 1.41
    c = [_run_folder(tmp_path / "fcn" / f"s{i}", v) for i, v in enumerate([40.0, 42.0])]           # 41 ± 1.41
    script = load_script("compare_runs")
    out = tmp_path / "cmp"
    script.main(["--group", "ccnet", *a, "--group", "danet", *b, "--group", "fcn", *c, "--out", str(out)])
    text = (out / "groups.md").read_text()
    assert "| ccnet | 3 | 92.00 ± 2.00 | 90.00 ± 0.00 | 93.00 ± 2.00 | 90.00 / 92.00 / 94.00 |" in text
    assert "ccnet and danet overlap in mIoU" in text and "fcn overlap" not in text and "and fcn" not in text
    assert Image.open(out / "groups_miou.png").size[0] > 300
    assert (out / "comparison.md").is_file()  # the per-run table of all seven runs as well
    with pytest.raises(SystemExit):
        script.main(["--group", "lonely", "--out", str(out)])  # a group without runs
