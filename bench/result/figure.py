"""How a figure is declared: once, on the result field that holds it.

`figure(...)` is a dataclass field whose metadata says the figure's label, unit, direction and
format. The report's table, its per-run frame (results.csv), the plots and `--compare` /
`--fail-on` all read these declarations, so a figure added to a meter's report dataclass reaches
every one of them with no second list to edit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, is_dataclass
from typing import Any


@dataclass(frozen=True)
class Metric:
    key: str  # the result field's name; also the column of the per-run frame
    label: str  # short column header
    unit: str  # "" when dimensionless
    higher_is_better: bool
    fmt: str = ".2f"  # format spec of one value; "count" and "percent" are special
    mark_best: bool = True  # some columns have no meaningful "best" (cache build of uncached runs)
    help: str = ""  # one line: how it is measured
    absent: str = "n/a"  # what an empty cell says ("—" where the figure does not apply)

    @property
    def axis_label(self) -> str:
        """The label of a plot axis, with its unit (every axis says what it counts)."""
        return f"{self.label} ({self.unit})" if self.unit else f"{self.label} (unitless)"

    @property
    def header(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit and self.unit != "×" else self.label

    def format(self, v: float | None) -> str:
        if v is None or not math.isfinite(v):
            return "n/a"
        if self.fmt == "count":
            return format_count(v)
        if self.fmt == "percent":
            return f"{100 * v:.2f}%"
        text = format(v, self.fmt)
        return f"{text}×" if self.unit == "×" else text

    def better(self, a: float, b: float) -> bool:
        """Is `a` strictly better than `b`?"""
        return a > b if self.higher_is_better else a < b


def format_count(n: float) -> str:
    """48723 -> 48.7k; 94.4e6 -> 94.40M."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}G"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{int(n)}"


_KEY = "figure"


def figure(
    label: str,
    unit: str,
    higher_is_better: bool,
    fmt: str = ".2f",
    *,
    help: str = "",
    mark_best: bool = True,
    absent: str = "n/a",
    default: Any = None,
) -> Any:
    """A dataclass field holding a figure (None when not measured), declared for the report."""
    spec = {
        "label": label,
        "unit": unit,
        "higher_is_better": higher_is_better,
        "fmt": fmt,
        "help": help,
        "mark_best": mark_best,
        "absent": absent,
    }
    return field(default=default, metadata={_KEY: spec})


def declared(cls: type) -> dict[str, Metric]:
    """The figures `cls` (a dataclass type) declares, by field name."""
    return {f.name: Metric(f.name, **f.metadata[_KEY]) for f in fields(cls) if _KEY in f.metadata}


def numeric_fields(obj: Any) -> dict[str, float | None]:
    """Every int or float field of the dataclass instance `obj` (None where not measured)."""
    if obj is None or not is_dataclass(obj):
        return {}
    out: dict[str, float | None] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if v is None and _is_number_field(f):
            out[f.name] = None
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[f.name] = float(v)
    return out


_NUMBER_TYPES = {"float", "int", "float | None", "int | None"}


def _is_number_field(f: Field) -> bool:
    return str(f.type) in _NUMBER_TYPES


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


def non_numbers(obj: Any, where: str = "") -> list[str]:
    """`path = value` for every number field (and number-valued mapping) of the dataclass `obj`,
    nested sections included, that holds something else: what a hand-edited result file gets
    wrong (`"ccc_mean": "high"`), found when it is read rather than deep inside the report."""
    if obj is None or not is_dataclass(obj):
        return []
    found: list[str] = []
    for f in fields(obj):
        v = getattr(obj, f.name)
        at = f"{where}.{f.name}" if where else f.name
        if _is_number_field(f):
            if not _is_number(v):
                found.append(f"{at} = {v!r}")
        elif str(f.type).startswith(("Mapping[str, float", "Mapping[str, int")):
            items = v.items() if isinstance(v, Mapping) else [("", v)]
            found += [f"{at}.{k} = {x!r}" for k, x in items if not _is_number(x)]
        elif is_dataclass(v):
            found += non_numbers(v, at)
        elif isinstance(v, tuple):
            for i, item in enumerate(v):
                found += non_numbers(item, f"{at}[{i}]")
    return found
