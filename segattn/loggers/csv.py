"""Lightning's CSV logger that keeps the curve of an earlier run in the same folder."""
from __future__ import annotations

from pathlib import Path

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_only


class RunCSVLogger(CSVLogger):
    """``<save_dir>/<name>/metrics.csv``; a run continued in its folder first moves the earlier file to
    ``metrics_<n>.csv`` (Lightning would delete it). Flushed every ``flush_logs_every_n_steps`` logs."""

    def __init__(self, save_dir: str | Path, name: str = "logs", version: str = "", **kwargs):
        csv_file = Path(save_dir) / name / str(version) / "metrics.csv"
        if rank_zero_only.rank == 0 and csv_file.is_file():
            earlier = len(list(csv_file.parent.glob("metrics_*.csv")))
            csv_file.rename(csv_file.with_name(f"metrics_{earlier + 1}.csv"))
        super().__init__(save_dir, name=name, version=version, **kwargs)
