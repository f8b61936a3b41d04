"""Which row of the report a run belongs to, and which row it is compared with.

A report of one backbone has a row per strategy. Runs of different experiments (a folder holding
results of two configurations: another corpus, profile or training setting) are never pooled as
replicates: their rows are named "config <sweep hash> · strategy", each with its own baseline.
A sweep over several backbones (`--model a,b`)
has a row per (backbone, strategy), named "backbone · strategy"; each row's speed-up and paired
CCC difference are against full finetuning of its own backbone, and a run is flagged degenerate
only against runs of its own backbone. Results are relabelled once, on the way in, so every table,
plot and comparison keys on the row name alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.result import RunResult

BASELINE = "full"  # speed-ups and paired comparisons are against full finetuning in fp32
SEP = " · "


def model_of(result: RunResult) -> str:
    return str(result.model.name if result.model else None)


def models_of(results: Sequence[RunResult]) -> list[str]:
    """The backbones the runs used, in first-seen order."""
    return list(dict.fromkeys(model_of(r) for r in results))


def sweep_of(result: RunResult) -> str:
    """The sweep hash of the run's configuration (`RunConfig.sweep_hash`), or "unknown"."""
    return result.sweep_hash() or "unknown"


def label_by_config(results: Sequence[RunResult]) -> list[RunResult]:
    """The results, with `strategy` of each set to "config <hash> · strategy" when they come
    from more than one configuration (beyond strategy, seed, backbone and fold); unchanged
    otherwise. Labelling twice changes nothing."""
    sweeps = [sweep_of(r) for r in results]
    if len(set(sweeps)) < 2:
        return list(results)
    out = []
    for r, sweep in zip(results, sweeps, strict=True):
        label = f"config {sweep}"
        out.append(
            r
            if label in r.strategy.split(SEP)[:-1]
            else r.replace(strategy=label + SEP + r.strategy)
        )
    return out


def label_by_model(results: Sequence[RunResult]) -> list[RunResult]:
    """The results, with `strategy` of each (shallow copy) set to "model · strategy" when they
    come from more than one backbone; unchanged otherwise. Labelling twice changes nothing."""
    if len(models_of(results)) < 2:
        return list(results)
    out = []
    for r in results:
        prefix = f"{model_of(r)}{SEP}"
        out.append(r if r.strategy.startswith(prefix) else r.replace(strategy=prefix + r.strategy))
    return out


def group_of(name: str) -> str:
    """The backbone part of a row name ("" in a one-backbone report)."""
    return name.rpartition(SEP)[0]


def baseline_of(name: str) -> str:
    """The row that `name` is compared with: full finetuning of the same backbone."""
    group = group_of(name)
    return f"{group}{SEP}{BASELINE}" if group else BASELINE


def is_baseline(name: str) -> bool:
    return name == baseline_of(name)
