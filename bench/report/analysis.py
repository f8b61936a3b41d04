"""Per-strategy statistics over replicates (seeds, and folds where the corpus is
cross-validated): summaries of every figure, paired bootstrap against the baseline,
degenerate-run flags. Input: `RunResult`s; output: plain dataclasses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report.figures import TARGET_KEYS, Metric, figure_catalogue, table_metrics
from bench.report.frame import (
    BASELINE,
    Replicate,
    dimensions_of,
    replicate_of,
    runs_frame,
    strategy_order,
)
from bench.report.rows import baseline_of, group_of, is_baseline
from bench.report.target import (
    DEFAULT_TARGET,
    Target,
    TargetSummary,
    ToTarget,
    summarize_targets,
    to_target,
)
from bench.result import RunResult
from bench.stats import PairedBootstrap, Summary, degenerate_reasons, paired_bootstrap, summarize


@dataclass(frozen=True)
class Paired:
    """One replicate's paired comparison of a strategy's test CCC against the baseline's."""

    replicate: Replicate
    result: PairedBootstrap | None
    note: str | None = None  # why there is no result


@dataclass(frozen=True)
class Failure:
    replicate: Replicate
    status: str
    error: str


@dataclass(frozen=True)
class StrategyStats:
    name: str
    replicates: tuple[Replicate, ...]  # replicates that finished ok
    figures: Mapping[str, Summary]  # metric key -> summary over the ok replicates
    failures: tuple[Failure, ...] = ()
    paired: tuple[Paired, ...] = ()
    degenerate: tuple[tuple[Replicate, str], ...] = ()  # (replicate, reason)
    target: TargetSummary | None = None  # how many runs reached their quality target

    def mean(self, key: str) -> float | None:
        s = self.figures.get(key)
        return None if s is None else s.mean

    @property
    def ok(self) -> bool:
        return bool(self.replicates)

    @property
    def n_significant(self) -> int:
        return sum(1 for p in self.paired if p.result is not None and p.result.significant)


@dataclass(frozen=True)
class Analysis:
    dimensions: tuple[str, ...]
    metrics: tuple[Metric, ...]
    runs: pd.DataFrame  # one row per run, with a `degenerate` column
    strategies: tuple[StrategyStats, ...]
    replicates: tuple[Replicate, ...]  # every (seed, fold) with a result
    baseline: str = BASELINE
    notes: tuple[str, ...] = field(default=())
    target: Target = DEFAULT_TARGET
    to_target: Mapping[tuple[str, Replicate], ToTarget] = field(default_factory=dict)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted({r.seed for r in self.replicates}))

    @property
    def folds(self) -> tuple[int, ...]:
        return tuple(sorted({r.fold for r in self.replicates if r.fold is not None}))

    @property
    def spread(self) -> str:
        """What figures are averaged over: "3 seeds", "3 seeds x 5 folds"."""
        n = len(self.seeds)
        text = f"{n} seed{'s' if n != 1 else ''}"
        if self.folds:
            text += f" x {len(self.folds)} fold{'s' if len(self.folds) != 1 else ''}"
        return text

    @property
    def several(self) -> bool:
        """More than one replicate: spreads and confidence intervals exist."""
        return len(self.replicates) > 1

    def get(self, name: str) -> StrategyStats | None:
        return next((s for s in self.strategies if s.name == name), None)

    @property
    def ok_strategies(self) -> tuple[StrategyStats, ...]:
        return tuple(s for s in self.strategies if s.ok)


def _predictions(r: RunResult) -> tuple[np.ndarray, np.ndarray] | None:
    p = r.predictions
    if p is None or not len(p.pred) or not len(p.target):
        return None
    return np.asarray(p.pred, dtype=np.float64), np.asarray(p.target, dtype=np.float64)


def _ccc_mean(r: RunResult) -> float | None:
    return r.metrics.ccc_mean if r.metrics else None


def _pair(run: RunResult, base: RunResult | None, rep: Replicate, n_resamples: int) -> Paired:
    if base is None:
        baseline = baseline_of(run.strategy)
        return Paired(rep, None, f"no successful {baseline} run at {rep}")
    a, b = _predictions(run), _predictions(base)
    if a is None or b is None:
        return Paired(rep, None, "per-utterance predictions not stored")
    if a[0].shape != b[0].shape or not np.allclose(a[1], b[1]):
        return Paired(rep, None, "test utterances differ from the baseline's")
    try:
        return Paired(
            rep, paired_bootstrap(a[0], b[0], a[1], n_resamples=n_resamples, seed=rep.seed)
        )
    except ValueError as exc:  # constant predictions leave CCC undefined in every resample
        return Paired(rep, None, str(exc))


def analyse(
    results: Sequence[RunResult],
    far_below: float = 0.2,
    n_resamples: int = 2000,
    target: Target = DEFAULT_TARGET,
) -> Analysis:
    """Everything the report says about each strategy, computed from stored results only."""
    dims = dimensions_of(results)
    metrics = table_metrics(dims)
    runs = runs_frame(results)
    # The cost to a quality target depends on other runs (the baseline's), so it is computed
    # here, not stored: one column per figure of `ToTarget`, NaN where not reached.
    per_run = to_target(results, target)
    if len(runs):
        keys = list(zip(runs.strategy, runs.replicate, strict=True))
        for key in TARGET_KEYS:
            runs[key] = [
                np.nan if (v := getattr(per_run.get(k), key, None)) is None else float(v)
                for k in keys
            ]
        runs["target_reached"] = [bool(per_run.get(k) and per_run[k].reached) for k in keys]
    ok_runs = [r for r in results if r.ok]
    by_key = {(r.strategy, replicate_of(r)): r for r in results}

    flags: dict[tuple[str, Replicate], list[str]] = {}
    for r in ok_runs:
        s, rep = r.strategy, replicate_of(r)
        others = [
            _ccc_mean(o)
            for o in ok_runs
            if replicate_of(o) == rep
            and o.strategy != s
            and group_of(o.strategy) == group_of(s)  # the same backbone
        ]
        pred = _predictions(r)
        reasons = degenerate_reasons(
            None if pred is None else pred[0],
            dims,
            _ccc_mean(r),
            [o for o in others if o is not None],
            far_below=far_below,
        )
        # Stored flags only where the predictions are not stored to recompute them from (the
        # same function made both, so with predictions they would repeat `reasons`).
        stored = list(r.metrics.degenerate) if pred is None and r.metrics else []
        flags[(s, rep)] = list(dict.fromkeys(stored + reasons))
    runs["degenerate"] = [
        "; ".join(flags.get((s, rep), []))
        for s, rep in zip(runs.strategy, runs.replicate, strict=True)
    ]

    stats = []
    for name in strategy_order(results):
        mine = runs[runs.strategy == name]
        ok = mine[mine.status == "ok"].sort_values(["seed", "fold"], na_position="first")
        figures = {m.key: summarize(ok[m.key]) for m in figure_catalogue(dims) if m.key in ok}
        failures = tuple(
            Failure(r.replicate, str(r.status), str(r.error or "no error recorded"))
            for r in mine[mine.status != "ok"].itertuples()
        )
        paired = ()
        base = baseline_of(name)
        if not is_baseline(name):
            paired = tuple(
                _pair(
                    by_key[(name, rep)],
                    _ok_or_none(by_key.get((base, rep))),
                    rep,
                    n_resamples,
                )
                for rep in ok.replicate
            )
        degenerate = tuple(
            (rep, reason) for rep in ok.replicate for reason in flags.get((name, rep), [])
        )
        stats.append(
            StrategyStats(
                name,
                tuple(ok.replicate),
                figures,
                failures,
                paired,
                degenerate,
                summarize_targets(per_run, name),
            )
        )
    replicates = tuple(sorted({replicate_of(r) for r in results}))
    return Analysis(dims, metrics, runs, tuple(stats), replicates, target=target, to_target=per_run)


def _ok_or_none(r: RunResult | None) -> RunResult | None:
    return r if r is not None and r.ok else None
