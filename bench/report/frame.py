"""Result dicts -> one pandas row per run (the shape of results.csv)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


def replicate_of(result: dict) -> Replicate:
    config = result.get("config") or {}
    fold = config.get("data", config).get("fold")  # nested since DataConfig; flat before
    return Replicate(int(result["seed"]), None if fold is None else int(fold))


def device_model(result: dict) -> str | None:
    """The kind of device a run measured on (the GPU model; a CPU's name): speed-ups compare
    runs of the same kind only. None when the result does not say."""
    dev = result.get("device") or {}
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


def runs_frame(results: Sequence[dict]) -> pd.DataFrame:
    """One row per run with every figure the report uses (NaN where absent), plus its speed-up
    over the baseline's run at the same replicate on the same device model (NaN when there is
    none: throughput on two GPU models says nothing about the strategies)."""
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
            "fold": replicate_of(r).fold,
            "replicate": replicate_of(r),
            "device_model": device_model(r),
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
