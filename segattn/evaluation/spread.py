"""Spread over repeated runs (seeds): mean, sample standard deviation, and which intervals overlap."""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Mapping, Optional, Sequence


@dataclass(frozen=True)
class Spread:
    """``values`` of one group (e.g. a head's mIoU per seed); ``std`` is the sample standard deviation
    (n - 1 in the denominator), None for a single value."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def std(self) -> Optional[float]:
        n = len(self.values)
        if n < 2:
            return None
        return math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (n - 1))

    @property
    def interval(self) -> tuple[float, float]:
        """mean ± std (the mean alone for one value)."""
        half = self.std or 0.0
        return self.mean - half, self.mean + half

    def text(self, digits: int = 1) -> str:
        """``"91.0 ± 0.5"``, or ``"91.0"`` for one value."""
        return f"{self.mean:.{digits}f}" + ("" if self.std is None else f" ± {self.std:.{digits}f}")


def spread(values: Sequence[float]) -> Spread:
    """Spread of finite ``values``; raises ValueError when there is none or one is NaN/infinite."""
    values = tuple(float(v) for v in values)
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"expected one or more finite values, got {list(values)}")
    return Spread(values)


def overlapping_pairs(groups: Mapping[str, Spread]) -> list[tuple[str, str]]:
    """Pairs of groups whose mean ± std intervals overlap (their difference is within the seed spread)."""
    pairs = []
    for (a, sa), (b, sb) in combinations(groups.items(), 2):
        (lo_a, hi_a), (lo_b, hi_b) = sa.interval, sb.interval
        if lo_a <= hi_b and lo_b <= hi_a:
            pairs.append((a, b))
    return pairs


def overlap_sentences(groups: Mapping[str, Spread], what: str) -> list[str]:
    """One line per overlapping pair: ``"danet and nonlocal overlap in <what> (91.0 ± 0.5 vs 91.2 ± 0.3): ..."``."""
    return [f"{a} and {b} overlap in {what} ({groups[a].text()} vs {groups[b].text()}): "
            f"the difference is within the spread over seeds" for a, b in overlapping_pairs(groups)]
