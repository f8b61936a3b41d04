"""The comparison table as plain data (cells with text, interval, sort key, best mark), shared by
the markdown, HTML and console renderers so they can never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.report.analysis import Analysis, StrategyStats
from bench.report.compare import Comparison
from bench.report.evidence import Evidence
from bench.report.figures import (
    CACHE_BUILD,
    ENERGY,
    ENERGY_TO_TARGET,
    PARAMS,
    SHARE,
    TARGET_KEYS,
    VRAM_ALLOC,
    VRAM_NVML,
    Metric,
)
from bench.report.rows import baseline_of, is_baseline
from bench.stats import Summary


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    help: str
    na_reason: str | None = None  # set when no row has a value: why the column is empty


@dataclass(frozen=True)
class Cell:
    text: str  # mean ± sd, a single value, or n/a
    ci: str | None = None  # the 95% interval "[low, high]", when there are several seeds
    sort: float | None = None
    best: bool = False
    flag: str | None = None  # a regression against --compare
    title: str | None = None  # hover text
    ci_half: str | None = None  # the same interval as "±half-width" (Student t: symmetric)


@dataclass(frozen=True)
class Row:
    strategy: str
    cells: tuple[Cell, ...]
    ok: bool
    errors: tuple[str, ...] = ()  # "seed 0 (oom): ..." for each failed run
    badges: tuple[str, ...] = ()  # "baseline", "degenerate"


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    several_seeds: bool  # more than one replicate (seed, or seed and fold): spreads exist

    def not_measured(self) -> list[tuple[str, list[str]]]:
        """(reason, column headers) for the columns no run has a value for, one entry per reason."""
        groups: dict[str, list[str]] = {}
        for c in self.columns:
            if c.na_reason:
                groups.setdefault(c.na_reason, []).append(c.header)
        return list(groups.items())


def _na_reason(metric: Metric, notes: Sequence[str], analysis: Analysis) -> str:
    """Why a whole column is empty, taken from the runs' own notes where they say so."""
    if metric is CACHE_BUILD:
        return "no strategy in this run uses +cache"
    if metric.key in TARGET_KEYS:
        reached = [s for s in analysis.ok_strategies if s.target and s.target.reached]
        if reached and metric is ENERGY_TO_TARGET:
            return "GPU energy not measured on this device"
        why = {s.target.why for s in analysis.ok_strategies if s.target and s.target.why}
        return "; ".join(sorted(why)) or "no run reached its target"
    word = "energy" if metric is ENERGY else "GPU memory"
    said = next((n for n in notes if word in n), None)
    if said:
        return said
    if metric is ENERGY:
        return "energy_j_per_epoch is not in these results (no NVML energy counter reading)"
    if metric in (VRAM_NVML, VRAM_ALLOC):
        return "not measured on this device"
    return "not recorded in these results"


def value_cell(metric: Metric, s: Summary | None, several: bool) -> Cell:
    if s is None or s.mean is None:
        return Cell(metric.absent)
    text = metric.format(s.mean)
    ci = None
    if several and s.sd == 0.0:  # e.g. parameter counts: the same in every seed, no spread to show
        return Cell(text, None, s.mean, title=f"identical in all {s.n} seeds")
    if several and s.sd is not None:
        # No-break space after ±: a narrow column may wrap before "±", never inside "± sd".
        text = f"{text} ±\u00a0{metric.format(s.sd).rstrip('×')}"
        ci = f"[{metric.format(s.ci_low)}, {metric.format(s.ci_high)}]"
        half = f"±{metric.format(s.ci_half_width).rstrip('×')}"
        return Cell(text, ci, s.mean, title=f"{s.n} seeds; 95% CI {ci}", ci_half=half)
    return Cell(text, ci, s.mean, title=f"{s.n} seed(s)")


def _target_cell(c: Cell, s: StrategyStats) -> Cell:
    """A cost-to-target cell: "not reached" (never a number) when no run reached the target,
    the mean over those that did with "k/n" when only some did."""
    t = s.target
    if t is None or not t.runs:
        return Cell("n/a", title=t.why if t else None)
    if not t.reached:
        return Cell("not reached", title=f"no run reached its target ({t.label})")
    if c.sort is None:  # reached, but this figure was not measured (energy on a CPU)
        return Cell("n/a", title="reached, but this figure was not measured")
    if t.reached < t.runs:
        return replace(
            c,
            text=f"{c.text} ({t.label})",
            title=f"mean over the {t.reached} of {t.runs} runs that reached the target",
        )
    return c


def paired_cell(s: StrategyStats) -> Cell:
    """Mean CCC difference against the baseline at the same seed, and in how many seeds the
    paired bootstrap interval excludes zero."""
    if is_baseline(s.name):
        return Cell("baseline")
    done = [p.result for p in s.paired if p.result is not None]
    if not done:
        why = next((p.note for p in s.paired if p.note), "no paired runs")
        return Cell("n/a", title=why)
    delta = sum(d.delta for d in done) / len(done)
    sig = s.n_significant
    verdict = "n.s." if not sig else "sig." if len(done) == 1 else f"sig. {sig}/{len(done)}"
    p_text = ", ".join(f"{p.replicate}: p={p.result.p_value:.3f}" for p in s.paired if p.result)
    return Cell(f"{delta:+.3f} ({verdict})", sort=delta, title=p_text)


def build_table(
    analysis: Analysis,
    notes: Sequence[str],
    comparison: Comparison | None = None,
    evidence: Evidence | None = None,
) -> Table:
    several = analysis.several
    metrics = analysis.metrics
    columns = [Column("strategy", "Strategy", "strategy spelled as on the command line")]
    for m in metrics:
        empty = all(s.mean(m.key) is None for s in analysis.strategies)
        header = f"{m.header} (share)" if m is PARAMS else m.header
        columns.append(
            Column(m.key, header, m.help, _na_reason(m, notes, analysis) if empty else None)
        )
    columns.append(
        Column(
            "paired",
            f"ΔCCC vs {analysis.baseline}",
            "mean over seeds of the test-CCC difference to the baseline (of the same backbone) "
            "at the same seed; "
            "paired bootstrap over test utterances (2000 resamples): sig. when the 95% interval "
            "excludes 0 (sig. k/n: in k of n seeds), n.s. otherwise",
        )
    )
    if comparison is not None:
        columns += [
            Column(
                "cmp_ccc", "ΔCCC vs earlier", f"mean CCC change against {comparison.baseline_dir}"
            ),
            Column(
                "cmp_speed",
                "Δ throughput vs earlier",
                f"training samples/s change against {comparison.baseline_dir}",
            ),
        ]

    best: dict[str, set[str]] = {}
    for m in metrics:
        vals = [
            (s.name, s.mean(m.key))
            for s in analysis.ok_strategies
            # A cost to target counts as best only where every run reached the target.
            if m.key not in TARGET_KEYS or (s.target and s.target.reached == s.target.runs)
        ]
        vals = [(n, v) for n, v in vals if v is not None]
        if not m.mark_best or len(vals) < 2:
            continue
        top = max(v for _, v in vals) if m.higher_is_better else min(v for _, v in vals)
        best[m.key] = {n for n, v in vals if v == top}

    runs = analysis.runs
    reused = (
        set(runs.loc[runs.cache_reused.astype(bool), "strategy"])
        if "cache_reused" in runs.columns
        else set()
    )
    emulated = (
        dict(runs.loc[runs.precision_emulated.astype(bool), ["strategy", "precision"]].values)
        if "precision_emulated" in runs.columns
        else {}
    )
    rows = []
    for s in analysis.strategies:
        errors = tuple(f"{f.replicate} ({f.status}): {f.error}" for f in s.failures)
        busy = evidence is not None and s.name in evidence.busy_strategies
        badges = tuple(
            b
            for b, on in (
                ("baseline", is_baseline(s.name)),
                ("degenerate", s.degenerate),
                (f"emulated {emulated.get(s.name)}", s.name in emulated),
                ("busy machine", busy),
            )
            if on
        )
        # Relative figures of a row whose baseline collapsed say nothing about the strategy.
        against_collapsed = evidence is not None and baseline_of(s.name) in evidence.collapsed
        if not s.ok:
            rows.append(Row(s.name, (), False, errors, badges))
            continue
        cells = []
        for m in metrics:
            c = value_cell(m, s.figures.get(m.key), several)
            if m.key in TARGET_KEYS:
                c = _target_cell(c, s)
            if m is PARAMS and s.mean(SHARE.key) is not None:
                c = replace(c, text=f"{c.text} ({SHARE.format(s.mean(SHARE.key))})")
            if s.name in best.get(m.key, ()):
                c = replace(c, best=True, title=f"best in column; {c.title}")
            if m.key == "cache_build_s" and s.name in reused:
                c = replace(
                    c,
                    text=f"{c.text} (reused)",
                    title="the prefix cache was built by an "
                    "earlier run (same weights, boundary, preprocessing and audio); this is "
                    "the time to verify and load it. The cost of building it shows on the "
                    "run that built it",
                )
            flag = evidence.flag(s.name, m.key) if evidence is not None else None
            if m.key == "speedup" and against_collapsed and c.sort is not None:
                flag = f"vs a collapsed {baseline_of(s.name)}"
            if flag:
                c = replace(c, flag=flag)
            cells.append(c)
        paired = paired_cell(s)
        if against_collapsed and not is_baseline(s.name):
            paired = replace(paired, flag=f"vs a collapsed {baseline_of(s.name)}")
        cells.append(paired)
        if comparison is not None:
            cells += _compare_cells(comparison, s.name)
        rows.append(Row(s.name, tuple(cells), True, errors, badges))
    return Table(tuple(columns), tuple(rows), several)


def _compare_cells(comparison: Comparison, strategy: str) -> list[Cell]:
    ch = comparison.get(strategy)
    if ch is None or (ch.ccc_delta is None and ch.speed_change is None):
        note = ch.note if ch is not None else "not compared"
        flag = "; ".join(ch.flags) if ch is not None and ch.flags else None
        return [Cell("n/a", title=note, flag=flag), Cell("n/a", title=note)]
    ccc_flag = next((f for f in ch.flags if f.startswith("CCC")), None)
    speed_flag = next((f for f in ch.flags if f.startswith("slow")), None)
    c1 = (
        Cell(f"{ch.ccc_delta:+.3f}", sort=ch.ccc_delta, flag=ccc_flag)
        if ch.ccc_delta is not None
        else Cell("n/a")
    )
    c2 = (
        Cell(f"{100 * ch.speed_change:+.1f}%", sort=ch.speed_change, flag=speed_flag)
        if ch.speed_change is not None
        else Cell("n/a")
    )
    return [c1, c2]
