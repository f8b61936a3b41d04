"""Pareto fronts over any figures, each with its own "better" direction."""

from __future__ import annotations

import math
from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float], higher_is_better: Sequence[bool]) -> bool:
    """`a` is at least as good as `b` in every objective and strictly better in one."""
    strictly = False
    for x, y, hib in zip(a, b, higher_is_better, strict=True):
        gx, gy = (x, y) if hib else (-x, -y)
        if gx < gy:
            return False
        if gx > gy:
            strictly = True
    return strictly


def pareto_front(
    points: Sequence[Sequence[float | None]], higher_is_better: Sequence[bool]
) -> list[int]:
    """Indices of the non-dominated points, in input order. Points with a missing or NaN
    coordinate are not comparable and never on the front; exact duplicates are both kept."""
    valid = [
        i
        for i, p in enumerate(points)
        if len(p) == len(higher_is_better) and all(v is not None and math.isfinite(v) for v in p)
    ]
    return [
        i
        for i in valid
        if not any(dominates(points[j], points[i], higher_is_better) for j in valid if j != i)  # type: ignore[arg-type]
    ]
