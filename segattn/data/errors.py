"""The one exception type for bad data, and helpers that describe what was found on disk."""
from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """A dataset on disk does not match what the loader expects (message says what and where)."""


def describe_tree(root: str | Path, depth: int = 3, max_entries: int = 8) -> str:
    """Indented listing of ``root`` down to ``depth`` levels, at most ``max_entries`` per folder."""
    root = Path(root)
    if not root.exists():
        parent = next((p for p in root.parents if p.exists()), None)
        return f"  {root} does not exist" + (f" (nearest existing parent: {parent})" if parent else "")
    if not root.is_dir():
        return f"  {root} is a file, not a folder"
    lines = [f"  {root}/"]

    def walk(folder: Path, level: int) -> None:
        entries = sorted(folder.iterdir())
        for entry in entries[:max_entries]:
            lines.append("  " + "  " * level + entry.name + ("/" if entry.is_dir() else ""))
            if entry.is_dir() and level < depth:
                walk(entry, level + 1)
        if len(entries) > max_entries:
            lines.append("  " + "  " * level + f"... ({len(entries) - max_entries} more)")
        if not entries:
            lines.append("  " + "  " * level + "(empty)")

    walk(root, 1)
    return "\n".join(lines)


def list_unmatched(kind: str, names: list[str], limit: int = 5) -> str:
    """One line naming how many ``names`` are unmatched and the first ``limit`` of them."""
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"{len(names)} {kind}: {shown}"
