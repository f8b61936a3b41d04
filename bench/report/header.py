"""The report's header: what ran, and the warnings a reader must see before any number."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.meter.precision import EMULATED_MEANING, describe_facts
from bench.report.analysis import Analysis
from bench.report.figures import format_count
from bench.report.frame import device_model, replicate_of
from bench.report.rows import BASELINE, SEP, baseline_of, is_baseline, model_of, models_of
from bench.result import DataInfo, RunResult


@dataclass(frozen=True)
class Header:
    facts: tuple[tuple[str, str], ...]  # (label, value), in display order
    warnings: tuple[str, ...]
    notes: tuple[str, ...]  # every distinct note the runs recorded
    profile: str


def shared_config_hash(config: Mapping[str, Any]) -> str:
    """Hash of a run's configuration without its strategy, seed and backbone: equal for every
    run of one sweep (`--model a,b` included: the header lists the backbones), so it identifies
    the sweep (a result's `run_id` identifies one run)."""
    rest = {k: v for k, v in config.items() if k not in ("strategy", "seed", "model")}
    if isinstance(rest.get("train"), Mapping):
        # A learning-rate search's grid points belong to one sweep. lr_factor is newer than the
        # hash (always dropped); lr only when set, so default-rate sweeps keep their old hash.
        train = {k: v for k, v in rest["train"].items() if k != "lr_factor"}
        if train.get("lr") is not None:
            del train["lr"]
        rest["train"] = train
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:12]


def _distinct(values: Sequence[object]) -> list[str]:
    return list(dict.fromkeys(str(v) for v in values if v not in (None, "")))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _corpus(data: DataInfo) -> str:
    n = data.n_utterances
    total = sum(int(v) for v in n.values())
    splits = " / ".join(f"{k} {v}" for k, v in n.items())
    parts = [f"{data.name}: {total} utterances ({splits})" if splits else str(total)]
    if data.hours is not None:
        parts.append(f"{data.hours} h")
    if data.dimensions:
        parts.append(f"labels {', '.join(map(str, data.dimensions))} in {data.scale}")
    return ", ".join(parts)


def _device(dev: Mapping[str, Any]) -> str:
    if dev.get("type") == "cuda":
        mem = f", {int(dev['memory_mib']) / 1024:.0f} GiB" if dev.get("memory_mib") else ""
        cuda = f", CUDA {dev['cuda']}" if dev.get("cuda") else ""
        return f"cuda: {dev.get('name')}{mem}{cuda}"
    threads = f" ({dev['threads']} threads)" if dev.get("threads") else ""
    return f"{dev.get('type')}: {dev.get('name')}{threads}"


def _software(env: Mapping[str, Any]) -> str:
    keys = ("python", "torch", "transformers", "peft", "serbench")
    parts = [f"{k} {env[k]}" for k in keys if env.get(k)]
    parts.append(f"commit {env.get('git_commit') or 'unknown'}")
    return ", ".join(parts)


def _weights(runs: Sequence[RunResult]) -> list[str]:
    return _distinct([r.model.weights for r in runs if r.ok and r.model]) or ["unknown"]


def _backbone(name: str, runs: Sequence[RunResult]) -> str:
    """One backbone as "name: weights, family, size", from its runs (the successful ones first)."""
    ok = [r for r in runs if r.ok]
    weights = _weights(runs)
    arch = next(
        (r.model.architecture for r in ok + list(runs) if r.model and r.model.architecture), {}
    )
    parts = [f"{name}: {' / '.join(weights)} weights"]
    if arch.get("family"):  # results from before several families were supported lack it
        parts.append(arch["family"] + (" (pre-LN)" if arch.get("pre_layer_norm") else ""))
    if arch:
        parts.append(f"{arch.get('layers')} layers, hidden size {arch.get('hidden_size')}")
    if arch.get("params_backbone"):
        parts.append(f"{format_count(arch['params_backbone'])} parameters")
    return ", ".join(parts)


# A run whose stalled steps take more than this share of its timed training is flagged.
STALL_FLAG_SHARE = 0.05


def _mixed_models(results: Sequence[RunResult], analysis: Analysis) -> str | None:
    """The fairness warning when the runs ran on more than one device model (a sweep spread
    over a mixed cluster), or None. Speed-ups then pair runs on the same model only."""
    models = Counter(m for m in map(device_model, results) if m)
    if len(models) < 2:
        return None
    listing = "; ".join(f"{m} ({n} run{'s' if n != 1 else ''})" for m, n in models.most_common())
    runs = analysis.runs
    unpaired = int(
        ((runs.status == "ok") & ~runs.strategy.map(is_baseline) & pd.isna(runs.speedup)).sum()
    )
    tail = f"; {unpaired} runs have no {BASELINE} run to pair with there" if unpaired else ""
    return (
        f"Runs ran on {len(models)} device models ({listing}): throughput, memory and energy "
        "do not compare across models. Speed-ups are computed only between runs on the same "
        f"model at the same seed{tail} (results.csv lists each run's device)."
    )


def different_data(results: Sequence[RunResult]) -> str | None:
    """The warning when runs trained on different data (their corpus fingerprints differ: clips
    deleted, added or changed between runs), naming the runs of each; None when they agree or
    the results do not say (written before fingerprints were recorded)."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        if r.data is not None and r.data.fingerprint:
            groups.setdefault(r.data.fingerprint, []).append(r)
    if len(groups) < 2:
        return None

    def one(fingerprint: str, runs: list[RunResult]) -> str:
        n = runs[0].data.n_utterances  # type: ignore[union-attr]
        clips = "/".join(str(v) for v in n.values())
        names = ", ".join(f"{r.strategy} {replicate_of(r)}" for r in runs)
        return f"{fingerprint} ({clips} train/val/test clips): {names}"

    listing = "; ".join(one(f, runs) for f, runs in groups.items())
    return (
        f"Runs trained on {len(groups)} different versions of the data (corpus fingerprints "
        f"differ: clips deleted, added or changed between runs): {listing}. Their figures do "
        "not compare; rerun the stale runs with --force once the data is settled."
    )


def build_header(
    results: Sequence[RunResult], analysis: Analysis, sweep_notes: Sequence[str] = ()
) -> Header:
    """The header's facts, warnings and notes; `sweep_notes`: what the sweep decided that the
    results cannot say (a device-adapted default strategy set), shown first."""
    ok = [r for r in results if r.ok]
    r0 = ok[0] if ok else results[0]
    data = r0.data
    weights = _weights(results)
    models = models_of(results)
    backbones = [_backbone(m, [r for r in results if model_of(r) == m]) for m in models]
    hashes = _distinct([shared_config_hash(r.config) for r in results if r.config])
    devices = _distinct([_device(r.device) for r in results if r.device])
    software = _distinct([_software(r.environment) for r in results if r.environment])
    precision = _distinct(
        [
            describe_facts(r.device["precision"])
            for r in results
            if (r.device or {}).get("precision")
        ]
    )
    # From the first run's start to the last run's finish (ISO 8601 UTC strings sort by time).
    starts = sorted(_distinct([r.started_at or r.finished_at for r in results]))
    ends = sorted(_distinct([r.finished_at or r.started_at for r in results]))
    dates = [starts[0], ends[-1]] if starts and ends else []
    n_failed = sum(1 for r in results if not r.ok)
    facts = [
        ("Profile", str(r0.profile)),
        ("Model" if len(models) == 1 else f"Models ({len(models)})", "; ".join(backbones)),
        ("Corpus", _corpus(data) if data else "unknown (no successful run recorded it)"),
        ("Device", "; ".join(devices) or "unknown"),
        ("Precision", "; ".join(precision) or "not recorded (results of an earlier version)"),
        ("Software", "; ".join(software) or "unknown"),
        ("Seeds", f"{', '.join(map(str, analysis.seeds))} ({_count(len(analysis.seeds), 'seed')})"),
        *(
            [
                (
                    "Folds",
                    f"{', '.join(map(str, analysis.folds))} ({_count(len(analysis.folds), 'fold')}, "
                    "leave-one-session-out; figures are averaged over seeds and folds)",
                )
            ]
            if analysis.folds
            else []
        ),
        (
            "Runs",
            f"{len(results)} runs of {len({s.name.rpartition(SEP)[2] for s in analysis.strategies})} "
            f"strategies{f' on {len(models)} backbones' if len(models) > 1 else ''}, {n_failed} failed",
        ),
        ("Date", " to ".join(dict.fromkeys([dates[0], dates[-1]])) if dates else "unknown"),
        ("Config hash", ", ".join(hashes) or "unknown"),
    ]

    warnings = list(sweep_notes)
    if "random-init" in weights:
        warnings.append(
            "Backbone weights are RANDOM-INIT, not pretrained: CCC values show that the pipeline "
            "works, not what a pretrained model reaches."
        )
    if any((r.device or {}).get("type") not in (None, "cuda") for r in results):
        warnings.append(
            "Ran on a CPU, not a GPU: GPU memory and energy are not measured, and speed-ups are "
            "CPU speed-ups."
        )
    emulated = _distinct(
        [
            f"{r.strategy} ({(r.strategy_spec or {}).get('precision_resolved')})"
            for r in results
            if (r.strategy_spec or {}).get("precision_emulated")
        ]
    )
    if emulated:
        warnings.append(
            f"EMULATED precision: {', '.join(emulated)} ran {EMULATED_MEANING}. Marked "
            "'emulated' in the table; compare their CCC, not their speed."
        )
    fairness = _mixed_models(results, analysis)
    if fairness:
        warnings.append(fairness)
    elif len(devices) > 1:
        warnings.append(f"Runs come from {len(devices)} different devices: timings do not compare.")
    changed = different_data(results)
    if changed:
        warnings.append(changed)
    if len(hashes) > 1:
        warnings.append(
            f"Runs were made with {len(hashes)} different configurations (hashes "
            f"{', '.join(hashes)}): compare with care."
        )
    skipped = max(int(r.data.skipped_rows or 0) if r.data else 0 for r in results)
    if skipped:
        warnings.append(
            f"{skipped} manifest rows were skipped as bad input (reasons in the results' "
            "data.skipped_reasons)."
        )
    for r in ok:
        thr = r.efficiency.throughput if r.efficiency else None
        share = thr.stall_share if thr else None
        if thr is not None and share is not None and share > STALL_FLAG_SHARE:
            warnings.append(
                f"Run {r.strategy} {replicate_of(r)}: {thr.stall_steps} stalled steps "
                f"(slower than 3x the median step) took {share:.0%} of its timed training: its "
                "throughput measures the harness or the machine as much as the strategy."
            )
    for s in analysis.strategies:
        for f in s.failures:
            warnings.append(f"Run {s.name} {f.replicate} {f.status}: {f.error}")
        for rep, reason in s.degenerate:
            warnings.append(f"Degenerate run {s.name} {rep}: {reason}.")
    baselines = sorted({baseline_of(s.name) for s in analysis.strategies})
    missing = [b for b in baselines if analysis.get(b) is None or not analysis.get(b).ok]  # type: ignore[union-attr]
    if missing:
        warnings.append(
            f"No successful {', '.join(missing)} run: speed-ups and paired comparisons need it."
        )
    if not analysis.several:
        warnings.append(
            "One seed only: no spread, no confidence intervals; use --seeds 3 for the study's setup."
        )
    counts = {len(s.replicates) for s in analysis.ok_strategies}
    if len(counts) > 1:
        warnings.append(
            "Strategies have different numbers of successful runs: their means are not paired."
        )
    notes = _distinct([n for r in results for n in r.notes])
    return Header(tuple(facts), tuple(warnings), tuple(notes), str(r0.profile))
