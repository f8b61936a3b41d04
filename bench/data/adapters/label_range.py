"""`--label-range`: the scale a csv manifest's or Hugging Face dataset's labels are on.

Every SER corpus rates on its own scale (MSP-Podcast 1..7, IEMOCAP 1..5, others 0..1 or -1..1).
Labels are mapped linearly onto [-1, 1] for training, as the built-in adapters do. Without the
flag labels are read as -1..1; a corpus whose labels all lie on another known scale is refused
then, because reading 1..7 ratings as -1..1 would drop almost every row as out of range (and
0..1 ratings would train on a third of the range) without the user noticing why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bench.ccc import DIMENSIONS
from bench.data.adapters.base import LabelScale, Listing
from bench.errors import BenchError

FLAG = "--label-range"
ORIGIN = "--label-range"
# (low, high, name): checked tightest first, so labels on 1..5 are named 1..5, not 1..7.
KNOWN_SCALES = (
    (0.0, 1.0, "0 to 1"),
    (1.0, 5.0, "1 to 5 (IEMOCAP's)"),
    (1.0, 7.0, "1 to 7 (MSP-Podcast's)"),
)
# What else a corpus on a known scale may mean, said next to the suggested flag.
_ALTERNATIVE = {
    (0.0, 1.0): f"or {FLAG}=-1,1 if they are on -1 to 1 and merely all non-negative",
    (1.0, 5.0): f"or {FLAG} 1,7 if your corpus rates on 1 to 7",
}


def _bounds(text: str, part: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise BenchError(
            f"{FLAG} {part!r}: give LO,HI (two numbers, e.g. 1,7) for the whole corpus or "
            "per dimension ('arousal=1,7;valence=1,7;dominance=1,5')"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise BenchError(f"{FLAG} {part!r}: LO must be a finite number below HI")
    return low, high


@dataclass(frozen=True)
class LabelRange:
    """The native label range: one for every dimension (`default`) and/or per dimension."""

    default: tuple[float, float] | None = None
    by_dimension: tuple[tuple[str, float, float], ...] = ()

    def text(self) -> str:
        """The flag's value, in the form `parse_label_range` reads back to an equal object."""
        parts = [f"{self.default[0]:g},{self.default[1]:g}"] if self.default else []
        parts += [f"{d}={lo:g},{hi:g}" for d, lo, hi in self.by_dimension]
        return ";".join(parts)

    def scale_for(self, dimension: str) -> LabelScale | None:
        for d, low, high in self.by_dimension:
            if d == dimension:
                return LabelScale(low, high, ORIGIN)
        return LabelScale(*self.default, ORIGIN) if self.default else None

    @classmethod
    def from_dict(cls, d: dict) -> LabelRange:
        """Back from `dataclasses.asdict` after a JSON round trip (lists for tuples)."""
        default = tuple(d["default"]) if d.get("default") else None
        return cls(default, tuple(tuple(x) for x in d.get("by_dimension") or ()))  # type: ignore[arg-type]


def parse_label_range(text: str) -> LabelRange:
    """`1,7` or `arousal=1,7;valence=1,7;dominance=1,5` (a bare LO,HI covers the rest)."""
    default, named = None, {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        if "=" not in part:
            if default is not None:
                raise BenchError(f"{FLAG} {text!r}: give one range without a dimension, not two")
            default = _bounds(part, part)
            continue
        dim, bounds = (x.strip() for x in part.split("=", 1))
        if dim not in DIMENSIONS:
            raise BenchError(
                f"{FLAG} {part!r}: unknown dimension {dim!r}; use {', '.join(DIMENSIONS)}"
            )
        if dim in named:
            raise BenchError(f"{FLAG} {text!r}: {dim} is given twice")
        named[dim] = _bounds(bounds, part)
    if default is None and not named:
        raise BenchError(f"{FLAG} needs LO,HI (e.g. 1,7), not {text!r}")
    ordered = tuple((d, *named[d]) for d in DIMENSIONS if d in named)
    return LabelRange(default, ordered)


def _numbers(listing: Listing) -> list[list[float]]:
    """Per dimension, the finite numeric labels (the rest is validation's business)."""
    out: list[list[float]] = [[] for _ in listing.dimensions]
    for row in listing.rows:
        for values, text in zip(out, row.values, strict=True):
            try:
                value = float(text)
            except ValueError:
                continue
            if math.isfinite(value):
                values.append(value)
    return out


def _refuse_unscaled(listing: Listing, numbers: list[list[float]]) -> None:
    """Without --label-range: refuse labels that are plainly on another scale than -1..1."""
    every = [v for vs in numbers for v in vs]
    if not every:
        return
    low, high = min(every), max(every)
    for s_low, s_high, name in KNOWN_SCALES:
        if s_low <= low and high <= s_high:
            bounds = f"{s_low:g},{s_high:g}"
            flag = f"{FLAG}={bounds}" if s_low < 0 else f"{FLAG} {bounds}"
            per_dim = ";".join(f"{d}={bounds}" for d in listing.dimensions)
            alternative = _ALTERNATIVE.get((s_low, s_high))
            raise BenchError(
                f"{listing.source}: every label lies between {low:g} and {high:g}, on the "
                f"{name} scale, but without {FLAG} labels are read as -1 to 1; pass {flag} "
                f"to map them onto [-1, 1]"
                + (f" ({alternative})" if alternative else "")
                + f"; per dimension: {FLAG} '{per_dim}'"
            )
    # A few stray values keep a corpus off every known scale; most labels outside -1..1 still
    # say that the scale is another one, and skipping those rows one by one would hide it.
    outside = sum(not listing.scale.contains(v) for v in every)
    if outside > len(every) / 2:
        raise BenchError(
            f"{listing.source}: {outside} of {len(every)} labels lie outside -1 to 1 (they span "
            f"{low:g} to {high:g}); without {FLAG} labels are read as -1 to 1: pass the "
            f"corpus' scale as {FLAG} LO,HI (1,7 for MSP-Podcast's ratings, 1,5 for IEMOCAP's)"
        )


def apply_label_range(listing: Listing, label_range: LabelRange | None) -> Listing:
    """`listing` with the scale each dimension is on: `label_range`, or the listing's own.

    Raises BenchError when no range is given and every label lies on a known corpus scale other
    than -1..1 or most lie outside -1..1, when the range leaves a dimension out, or when no label
    of a dimension lies inside its range. Rows outside the range are left to validation, which names each one.
    """
    numbers = _numbers(listing)
    if label_range is None:
        _refuse_unscaled(listing, numbers)
        scales = tuple(listing.scale for _ in listing.dimensions)
    else:
        picked = [label_range.scale_for(d) for d in listing.dimensions]
        missing = [d for d, s in zip(listing.dimensions, picked, strict=True) if s is None]
        if missing:
            raise BenchError(
                f"{FLAG} {label_range.text()!r} gives no range for {', '.join(missing)} of "
                f"{listing.source}; add {missing[0]}=LO,HI, or a bare LO,HI for every "
                "dimension not named"
            )
        scales = tuple(s for s in picked if s is not None)
    for dim, scale, values in zip(listing.dimensions, scales, numbers, strict=True):
        if values and not any(scale.contains(v) for v in values):
            fix = (
                f"check {FLAG}"
                if label_range
                else f"pass the corpus' scale as {FLAG} LO,HI (1,7 for MSP-Podcast's ratings)"
            )
            raise BenchError(
                f"{listing.source}: no {dim} label lies inside {scale.span()} ({scale.origin}); "
                f"they span {min(values):g} to {max(values):g}: {fix}"
            )
    uniform = len(set(scales)) <= 1
    return replace(
        listing, scale=scales[0] if scales else listing.scale, scales=() if uniform else scales
    )
