"""Result dicts -> one pandas row per run (the shape of results.csv)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.report.rows import BASELINE, baseline_of, group_of, is_baseline
from bench.stats import per_seed_ratio

__all__ = ["BASELINE", "dimensions_of", "runs_frame", "strategy_order", "write_csv"]

# Columns every frame has (NaN where a result lacks them): what the table, the speed-ups and
# the plots read. Every other numeric efficiency figure of a result becomes a column too.
_EFFICIENCY_KEYS = (
    "train_samples_per_s",
    "train_audio_s_per_s",
    "epoch_time_s",
    "cache_build_s",
    "train_wall_s",
    "peak_vram_nvml_mib",
    "peak_vram_alloc_mib",
    "peak_rss_mib",
    "energy_j_per_epoch",
    "harness_efficiency",
)
_COMPUTE_KEYS = ("achieved_tflops", "mfu")


def dimensions_of(results: Sequence[dict]) -> tuple[str, ...]:
    """The label dimensions, in the corpus's order (a CSV corpus may have only two)."""
    for r in results:
        dims = (r.get("predictions") or {}).get("dimensions") or (r.get("data") or {}).get(
            "dimensions"
        )
        if dims:
            return tuple(str(d) for d in dims)
    for r in results:
        ccc = (r.get("metrics") or {}).get("ccc")
        if ccc:
            return tuple(str(d) for d in ccc)
    from bench.ccc import DIMENSIONS  # imports torch: only when no result names its dimensions

    return DIMENSIONS


def strategy_order(results: Sequence[dict]) -> list[str]:
    """Baseline first, then the order the sweep ran them in (first start time), so a report
    re-rendered from files (sorted by name) lists them as the sweep's own report did; with
    several backbones, each backbone's rows together, in the order the backbones first ran."""
    first: dict[str, str] = {}
    for r in results:
        name, started = str(r["strategy"]), str(r.get("started_at") or "")
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


def _num(v: object) -> float:
    """A stored figure as float; None (not measured) becomes NaN, never 0."""
    if v is None or isinstance(v, bool):
        return np.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return np.nan


def runs_frame(results: Sequence[dict]) -> pd.DataFrame:
    """One row per (strategy, seed) run with every figure the report uses (NaN where absent),
    plus the per-seed speed-up over the baseline."""
    dims = dimensions_of(results)
    rows = []
    for r in results:
        eff = r.get("efficiency") or {}
        met = r.get("metrics") or {}
        model = r.get("model") or {}
        spec = r.get("strategy_spec") or {}
        row: dict[str, object] = {
            "strategy": str(r["strategy"]),
            "model": model.get("name"),
            "seed": int(r["seed"]),
            "status": str(r.get("status")),
            "error": r.get("error"),
            "run_id": r.get("run_id"),
            "precision": spec.get("precision_resolved"),
        }
        for d in dims:
            row[f"ccc_{d}"] = _num((met.get("ccc") or {}).get(d))
        row["ccc_mean"] = _num(met.get("ccc_mean"))
        row["val_ccc_best"] = _num(met.get("val_ccc_best"))
        row["best_epoch"] = _num(met.get("best_epoch"))
        for k, v in eff.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                row[k] = _num(v)
        for k in _EFFICIENCY_KEYS:
            row.setdefault(k, np.nan)
        for k in _COMPUTE_KEYS:
            row[k] = _num((r.get("compute") or {}).get(k))
        row["epochs"] = _num(eff.get("epochs"))
        row["distinct_input_lengths"] = _num((r.get("data") or {}).get("distinct_input_lengths"))
        # A store built by an earlier run makes this run's cache time only a verify-and-load.
        row["cache_reused"] = bool((eff.get("cache") or {}).get("reused"))
        row["params_trainable"] = _num(model.get("params_trainable"))
        row["params_total"] = _num(model.get("params_total"))
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["trainable_share"] = df.params_trainable / df.params_total
    ok = df.status == "ok"
    base: dict[str, dict[int, float]] = {}  # baseline row -> seed -> samples/s
    for name, seed, v in zip(df.strategy[ok], df.seed[ok], df.train_samples_per_s[ok], strict=True):
        if is_baseline(name):
            base.setdefault(name, {})[seed] = v
    df["speedup"] = [
        per_seed_ratio({s: v}, base.get(baseline_of(name), {})).get(s, np.nan)
        if st == "ok"
        else np.nan
        for name, s, v, st in zip(
            df.strategy, df.seed, df.train_samples_per_s, df.status, strict=True
        )
    ]
    return df


def write_csv(df: pd.DataFrame, path: str) -> None:
    """results.csv: one row per run, plain columns, empty cells where a figure was not measured."""
    df.to_csv(path, index=False)
