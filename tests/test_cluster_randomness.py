"""Augmentation under 2-process DDP (gloo) with 2 DataLoader workers each: crops differ across ranks,
workers and epochs, and a rerun gives the same crops."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def crops(out: Path, port: int) -> dict[int, list]:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={port}", str(ROOT / "tests" / "helpers" / "crops.py"), str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {rank: json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)}


def test_crops_differ_across_ranks_workers_and_epochs_and_repeat_on_a_rerun(tmp_path):
    first = crops(tmp_path / "a", 29561)
    rows = first[0] + first[1]
    assert len(rows) == 16  # 2 ranks x 2 epochs x 4 samples
    assert {worker for _, _, worker, _ in rows} == {0, 1}
    assert len({digest for *_, digest in rows}) == len(rows)  # no two samples got the same crop
    assert all(a[3] != b[3] for a, b in zip(first[0], first[1]))  # same position, other rank
    assert crops(tmp_path / "b", 29562) == first  # a function of (seed, rank, epoch, position)
