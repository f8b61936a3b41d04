"""`--compare BASELINE_DIR`: changes against an earlier run, with regressions flagged for CI."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.errors import BenchError
from bench.report.analysis import Analysis, StrategyStats
from bench.report.figures import TARGET_KEYS, Metric, find_figure

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
    within_noise: tuple[str, ...] = ()  # beyond a threshold but within the runs' own spread
    unmeasured: tuple[str, ...] = ()  # --fail-on figures not measured now or before


@dataclass(frozen=True)
class Comparison:
    baseline_dir: str
    ccc_drop: float
    slowdown: float
    changes: tuple[Change, ...]
    # --fail-on figures that no strategy measured in both runs: a gate on them gates nothing.
    ungated: tuple[str, ...] = ()

    def get(self, strategy: str) -> Change | None:
        return next((c for c in self.changes if c.strategy == strategy), None)

    @property
    def regressions(self) -> list[str]:
        return [f"{c.strategy}: {f}" for c in self.changes for f in c.flags]

    @property
    def limit_violations(self) -> list[str]:
        return [f"{c.strategy}: {f}" for c in self.changes for f in c.limit_flags]

    @property
    def noise(self) -> list[str]:
        return [f"{c.strategy}: {f}" for c in self.changes for f in c.within_noise]

    @property
    def unmeasured(self) -> list[str]:
        return [f"{c.strategy}: {f}" for c in self.changes for f in c.unmeasured]


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _se(s: StrategyStats, key: str) -> float | None:
    """Standard error of a strategy's mean over its replicates; None below two replicates."""
    f = s.figures.get(key)
    if f is None or f.sd is None or f.n < 2:
        return None
    return f.sd / math.sqrt(f.n)


def seed_noise(now: StrategyStats, before: StrategyStats, key: str) -> float | None:
    """About a 95% band (2 standard errors) of the difference of two means over replicates, in
    the figure's own units; None unless both have at least two replicates."""
    a, b = _se(now, key), _se(before, key)
    return None if a is None or b is None else 2.0 * math.hypot(a, b)


def step_noise(s: StrategyStats) -> float | None:
    """How much a run's own steady-state step time varies, relative to its median: the step
    times' coefficient of variation where recorded, else (p99 - p50) / p50. A throughput that
    changed by less than this between two runs changed by no more than one run varies."""
    cv = s.mean("step_time_cv")
    if cv is not None:
        return cv
    p50, p99 = s.mean("step_time_p50_s"), s.mean("step_time_p99_s")
    if p50 is None or p99 is None or p50 <= 0:
        return None
    return max(0.0, (p99 - p50) / p50)


def _throughput_noise(now: StrategyStats, before: StrategyStats) -> float:
    """The relative throughput change the two runs' own spread can explain: the larger of the
    seeds' band and either run's step-time spread (0 when neither is known)."""
    band = []
    seeds = seed_noise(now, before, "train_samples_per_s")
    base = before.mean("train_samples_per_s")
    if seeds is not None and base:
        band.append(seeds / base)
    band += [n for n in (step_noise(now), step_noise(before)) if n is not None]
    return max(band, default=0.0)


def _limit(
    metric: Metric, now: StrategyStats, before: StrategyStats, limit: FigureLimit
) -> tuple[str | None, str | None, str | None]:
    """(violation, within-noise note, not-measured note) of one --fail-on limit."""
    a, b = now.mean(metric.key), before.mean(metric.key)
    if metric.key in TARGET_KEYS and (a is None or b is None):
        # A cost to target is None where the target was not reached: that is a result.
        if a is None and b is not None:
            return f"{metric.label}: target not reached now, {metric.format(b)} before", None, None
        where = "either run" if a is None and b is None else "the earlier run"
        return None, None, f"{metric.key}: target not reached (or no target) in {where}"
    if a is None or b is None:
        where = (
            "either run"
            if a is None and b is None
            else "this run"
            if a is None
            else "the earlier run"
        )
        return None, None, f"{metric.key} was not measured in {where}: --fail-on cannot gate on it"
    if not b:
        return None, None, f"{metric.key} is 0 in the earlier run: no relative change to gate on"
    worse = (b - a if metric.higher_is_better else a - b) / abs(b)
    if worse <= limit.fraction:
        return None, None, None
    text = f"{metric.label} worse by {100 * worse:.1f}% > {100 * limit.fraction:g}%"
    noise = seed_noise(now, before, metric.key)
    if noise is not None and abs(a - b) <= noise:
        return None, f"{text}, within the seeds' spread (±{metric.format(noise)})", None
    return text, None, None


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
    fraction), and a strategy that worked before and now fails. A change is a regression only
    when it also exceeds the runs' own spread: for CCC, two standard errors of the difference
    over seeds (with several seeds); for throughput, that band or either run's step-time
    spread, whichever is larger (see `step_noise`). Changes beyond a threshold but within the
    spread are listed as such, not flagged. Thresholds are strict: a change exactly at the
    threshold is not flagged.

    Refuses (BenchError) an unknown --fail-on figure, and two folders that share no strategy."""
    metrics = [(limit, find_figure(limit.figure, current.dimensions)) for limit in limits]
    shared = {s.name for s in current.strategies} & {e.name for e in earlier.strategies}
    if not shared:
        raise BenchError(
            f"--compare {baseline_dir}: no strategy in common with this run (now: "
            f"{', '.join(s.name for s in current.strategies)}; there: "
            f"{', '.join(e.name for e in earlier.strategies)}); compare runs of the same strategies"
        )
    models_now = set(current.runs.device_model.dropna()) if len(current.runs) else set()
    models_then = set(earlier.runs.device_model.dropna()) if len(earlier.runs) else set()
    other_device = bool(models_now and models_then and models_now != models_then)
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
        flags, noise = [], []
        if dc is not None and dc < -ccc_drop:
            text = f"CCC drop {-dc:.3f} > {ccc_drop:g}"
            band = seed_noise(s, e, "ccc_mean")
            if band is not None and -dc <= band:
                noise.append(f"{text}, within the seeds' spread (±{band:.3f})")
            else:
                flags.append(text)
        if ds is not None and ds < -slowdown:
            text = f"slow-down {-100 * ds:.1f}% > {100 * slowdown:g}%"
            band = _throughput_noise(s, e)
            if other_device:
                noise.append(f"{text}, measured on another device model")
            elif -ds <= band:
                noise.append(f"{text}, within the runs' own spread (±{100 * band:.0f}%)")
            else:
                flags.append(
                    text + (f" (beyond the runs' spread ±{100 * band:.0f}%)" if band else "")
                )
        beyond, unmeasured = [], []
        for limit, metric in metrics:
            violation, within, missing = _limit(metric, s, e, limit)
            beyond += [violation] if violation else []
            noise += [within] if within else []
            unmeasured += [missing] if missing else []
        changes.append(
            Change(
                s.name,
                dc,
                ds,
                (*flags, *beyond),
                limit_flags=tuple(beyond),
                within_noise=tuple(noise),
                unmeasured=tuple(unmeasured),
            )
        )
    for e in earlier.strategies:
        if current.get(e.name) is None:
            changes.append(Change(e.name, None, None, note="gone: only in the earlier run"))
    compared = [(s, earlier.get(s.name)) for s in current.ok_strategies if s.name in shared]
    ungated = tuple(
        metric.key
        for _, metric in metrics
        if not any(
            s.mean(metric.key) is not None and e is not None and e.mean(metric.key) is not None
            for s, e in compared
        )
    )
    return Comparison(str(baseline_dir), ccc_drop, slowdown, tuple(changes), ungated)
