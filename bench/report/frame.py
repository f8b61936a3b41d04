"""Results -> one pandas row per run (the shape of results.csv): its identity, and a column per
figure of `RunResult.figures()` (the efficiency sections' numeric fields and every declared
figure), NaN where a run did not measure it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report.lr_search import lr_point, resolved_lr
from bench.report.rows import BASELINE, baseline_of, group_of, is_baseline
from bench.result import RunResult, result_figures
from bench.stats import per_seed_ratio

__all__ = ["BASELINE", "dimensions_of", "runs_frame", "strategy_order", "write_csv"]


def dimensions_of(results: Sequence[RunResult]) -> tuple[str, ...]:
    """The label dimensions, in the corpus's order (a CSV corpus may have only two)."""
    for r in results:
        if r.dimensions:
            return r.dimensions
    from bench.ccc import DIMENSIONS  # imports torch: only when no result names its dimensions

    return DIMENSIONS


def strategy_order(results: Sequence[RunResult]) -> list[str]:
    """Baseline first, then the order the sweep ran them in (first start time), so a report
    re-rendered from files (sorted by name) lists them as the sweep's own report did; with
    several backbones, each backbone's rows together, in the order the backbones first ran."""
    first: dict[str, str] = {}
    for r in results:
        name, started = r.strategy, str(r.started_at or "")
        first[name] = min(first.get(name, started), started)
    names = list(first)
    group_first: dict[str, str] = {}
    for name in names:
        g = group_of(name)
        group_first[g] = min(group_first.get(g, first[name]), first[name])
    return sorted(
        names,
        key=lambda s: (
            group_first[group_of(s)],
            group_of(s),
            not is_baseline(s),
            first[s],
            names.index(s),
        ),
    )


@dataclass(frozen=True)
class Replicate:
    """What a strategy's runs are repeated over and paired by: the seed and, for a
    cross-validated corpus (IEMOCAP --folds), the fold. Figures are averaged over replicates;
    speed-ups and paired tests compare two strategies at the same replicate."""

    seed: int
    fold: int | None = None

    def __str__(self) -> str:
        return f"seed {self.seed}" + ("" if self.fold is None else f" fold {self.fold}")

    def __lt__(self, other: Replicate) -> bool:
        return (self.seed, self.fold or 0) < (other.seed, other.fold or 0)


def replicate_of(result: RunResult) -> Replicate:
    return Replicate(int(result.seed), result.fold)


def device_model(result: RunResult) -> str | None:
    """The kind of device a run measured on (the GPU model; a CPU's name): speed-ups compare
    runs of the same kind only. None when the result does not say."""
    dev = result.device or {}
    if not dev.get("type"):
        return None
    return str(dev.get("name")) if dev["type"] == "cuda" else f"{dev['type']}: {dev.get('name')}"


def _num(v: object) -> float:
    """A stored figure as float; None (not measured) becomes NaN, never 0."""
    if v is None or isinstance(v, bool):
        return np.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def runs_frame(results: Sequence[RunResult]) -> pd.DataFrame:
    """One row per run with every figure the report uses (NaN where absent), plus its speed-up
    over the baseline's run at the same replicate on the same device model (NaN when there is
    none: throughput on two GPU models says nothing about the strategies)."""
    dims = dimensions_of(results)
    figures = result_figures()
    rows = []
    for r in results:
        spec = r.strategy_spec or {}
        cache = r.efficiency.cache if r.efficiency else None
        row: dict[str, object] = {
            "strategy": r.strategy,
            "model": r.model.name if r.model else None,
            "seed": int(r.seed),
            "fold": r.fold,
            "replicate": replicate_of(r),
            "device_model": device_model(r),
            "status": r.status,
            "error": r.error,
            "run_id": r.run_id,
            "precision": spec.get("precision_resolved"),
            # reduced precision without hardware support on its device (bench/meter/precision.py)
            "precision_emulated": bool(spec.get("precision_emulated")),
            "lr": resolved_lr(r),  # the backbone rate it trained with
            "lr_point": lr_point(r),  # its --lrs grid point, or "default"
        }
        ccc = r.metrics.ccc if r.metrics else {}
        for d in dims:
            row[f"ccc_{d}"] = _num(ccc.get(d))
        row |= {k: _num(v) for k, v in r.figures().items()}
        for k in figures:
            row.setdefault(k, np.nan)
        # A store built by an earlier run makes this run's cache time only a verify-and-load.
        row["cache_reused"] = bool(cache and cache.reused)
        row["cache_mib"] = np.nan if cache is None else cache.mib
        row["params_total"] = _num(r.model.params_total if r.model else None)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    # Results of older versions stored no share; the counts give it.
    df["trainable_share"] = df.trainable_share.fillna(df.params_trainable / df.params_total)
    ok = df.status == "ok"
    # Baseline row -> (replicate, device model) -> samples/s: a speed-up pairs a run with its
    # baseline at the same seed and fold, measured on the same kind of device.
    base: dict[str, dict[tuple[Replicate, str | None], float]] = {}
    for name, key, v in zip(
        df.strategy[ok],
        zip(df.replicate[ok], df.device_model[ok], strict=True),
        df.train_samples_per_s[ok],
        strict=True,
    ):
        if is_baseline(name):
            base.setdefault(name, {})[key] = v
    df["speedup"] = [
        per_seed_ratio({k: v}, base.get(baseline_of(name), {})).get(k, np.nan)
        if st == "ok"
        else np.nan
        for name, k, v, st in zip(
            df.strategy,
            zip(df.replicate, df.device_model, strict=True),
            df.train_samples_per_s,
            df.status,
            strict=True,
        )
    ]
    return df


def write_csv(df: pd.DataFrame, path: str) -> None:
    """results.csv: one row per run, plain columns, empty cells where a figure was not measured."""
    df.to_csv(path, index=False)
