"""Samples named by an image-list file (one name per line), as VOC, Context and LIP ship their splits."""
from __future__ import annotations

from pathlib import Path

from segattn.data.errors import DatasetError, list_unmatched


def read_names(list_file: Path) -> list[str]:
    """Non-empty, stripped lines of ``list_file`` (the first field when a line holds several)."""
    if not list_file.is_file():
        raise DatasetError(f"split list {list_file} not found")
    return [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]


def listed_pairs(names: list[str], img_dir: Path, img_suffix: str, ann_dir: Path, ann_suffix: str,
                 list_file: Path) -> list[tuple[Path, Path]]:
    """``(img_dir/<name><img_suffix>, ann_dir/<name><ann_suffix>)`` per name; one error naming the missing files."""
    pairs = [(img_dir / f"{n}{img_suffix}", ann_dir / f"{n}{ann_suffix}") for n in names]
    missing_img = [str(i.name) for i, _ in pairs if not i.is_file()]
    missing_ann = [str(a.name) for _, a in pairs if not a.is_file()]
    if missing_img or missing_ann:
        lines = [f"files named in {list_file} are missing:"]
        if missing_img:
            lines.append("  " + list_unmatched(f"images not in {img_dir}", missing_img))
        if missing_ann:
            lines.append("  " + list_unmatched(f"labels not in {ann_dir}", missing_ann))
        raise DatasetError("\n".join(lines))
    return pairs
