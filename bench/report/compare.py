"""`--compare BASELINE_DIR`: changes against an earlier run, with regressions flagged for CI."""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import BenchError
from bench.report.analysis import Analysis
from bench.report.figures import find_figure

DEFAULT_CCC_DROP = 0.02  # absolute drop in mean CCC that counts as a regression
DEFAULT_SLOWDOWN = 0.10  # relative loss of training throughput that counts as a regression


@dataclass(frozen=True)
class FigureLimit:
    """`--fail-on FIGURE:THRESHOLD%`: a figure whose strategy mean may get worse (in its own
    direction, from its declaration) by at most `fraction` before it counts as a regression."""

    figure: str  # a key or label of the figure catalogue (bench/report/figures.py)
    fraction: float

    @classmethod
    def parse(cls, text: str) -> FigureLimit:
        name, sep, value = text.rpartition(":")
        try:
            fraction = float(value.strip().rstrip("%")) / 100
        except ValueError:
            fraction = -1.0
        if not sep or not name or not fraction >= 0:
            raise BenchError(
                f"--fail-on takes FIGURE:THRESHOLD% (e.g. peak_vram_alloc_mib:10%), not {text!r}"
            )
        return cls(name, fraction)


@dataclass(frozen=True)
class Change:
    strategy: str
    ccc_delta: float | None  # current mean CCC - earlier mean CCC
    speed_change: float | None  # current samples/s / earlier samples/s - 1
    flags: tuple[str, ...] = ()  # regressions beyond the thresholds (--fail-on's included)
    note: str | None = None  # new strategy, gone, ...
    limit_flags: tuple[str, ...] = ()  # those beyond a --fail-on limit


@dataclass(frozen=True)
class Comparison:
    baseline_dir: str
    ccc_drop: float
    slowdown: float
    changes: tuple[Change, ...]

    def get(self, strategy: str) -> Change | None:
        return next((c for c in self.changes if c.strategy == strategy), None)

    @property
    def regressions(self) -> list[str]:
        return [f"{c.strategy}: {f}" for c in self.changes for f in c.flags]

    @property
    def limit_violations(self) -> list[str]:
        return [f"{c.strategy}: {f}" for c in self.changes for f in c.limit_flags]


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def compare(
    current: Analysis,
    earlier: Analysis,
    baseline_dir: str,
    ccc_drop: float = DEFAULT_CCC_DROP,
    slowdown: float = DEFAULT_SLOWDOWN,
    limits: tuple[FigureLimit, ...] = (),
) -> Comparison:
    """Per strategy: change in mean CCC and in training throughput against `earlier`.

    Flags a CCC drop larger than `ccc_drop`, a throughput loss larger than `slowdown` (a
    fraction), and a strategy that worked before and now fails. Thresholds are strict: a change
    exactly at the threshold is not flagged."""
    changes = []
    for s in current.strategies:
        e = earlier.get(s.name)
        if e is None:
            changes.append(Change(s.name, None, None, note="new: not in the earlier run"))
            continue
        if not s.ok:
            flags = ("fails now, worked before",) if e.ok else ()
            changes.append(Change(s.name, None, None, flags, note="no successful run now"))
            continue
        dc = _delta(s.mean("ccc_mean"), e.mean("ccc_mean"))
        now, before = s.mean("train_samples_per_s"), e.mean("train_samples_per_s")
        ds = None if now is None or before is None or before <= 0 else now / before - 1.0
        flags = []
        if dc is not None and dc < -ccc_drop:
            flags.append(f"CCC drop {-dc:.3f} > {ccc_drop:g}")
        if ds is not None and ds < -slowdown:
            flags.append(f"slow-down {-100 * ds:.1f}% > {100 * slowdown:g}%")
        beyond = []
        for limit in limits:
            metric = find_figure(limit.figure, current.dimensions)
            a, b = s.mean(metric.key), e.mean(metric.key)
            if a is None or b is None or not b:
                continue
            worse = (b - a if metric.higher_is_better else a - b) / abs(b)
            if worse > limit.fraction:
                beyond.append(
                    f"{metric.label} worse by {100 * worse:.1f}% > {100 * limit.fraction:g}%"
                )
        changes.append(Change(s.name, dc, ds, (*flags, *beyond), limit_flags=tuple(beyond)))
    for e in earlier.strategies:
        if current.get(e.name) is None:
            changes.append(Change(e.name, None, None, note="gone: only in the earlier run"))
    return Comparison(str(baseline_dir), ccc_drop, slowdown, tuple(changes))
