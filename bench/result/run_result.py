"""`RunResult`: one (strategy, seed[, fold]) run, as a tree of frozen dataclasses.

`to_dict` is the JSON layout on disk; `from_dict` reads it back (`bench.result.migrate` first
brings results of older schemas to this one). Device, environment, configuration and strategy
spec are records of the inputs, kept as plain mappings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from bench.config import RunConfig
from bench.result.figure import Metric, declared, numeric_fields
from bench.result.sections import (
    AllocatorReport,
    CacheReport,
    Ceiling,
    Compute,
    DataInfo,
    Efficiency,
    EnergyReport,
    EpochLog,
    LoaderReport,
    MachineLoad,
    MemoryReport,
    Metrics,
    ModelInfo,
    Predictions,
    RunTimes,
    ThroughputReport,
)

# 3: efficiency nested in sections (throughput, allocator, memory, energy, time, cache, ceiling).
# 2: status "diverged"; metrics.degenerate a list; harness_efficiency, stalls, data.loader.
SCHEMA = 3

# Which section type each nested field holds; tuples of records are listed as (type,).
_NESTED: dict[str, Any] = {
    "model": ModelInfo,
    "data": DataInfo,
    "metrics": Metrics,
    "efficiency": Efficiency,
    "compute": Compute,
    "predictions": Predictions,
    "loader": LoaderReport,
    "history": (EpochLog,),
    "throughput": ThroughputReport,
    "allocator": AllocatorReport,
    "memory": MemoryReport,
    "energy": EnergyReport,
    "time": RunTimes,
    "cache": CacheReport,
    "ceiling": Ceiling,
    "load": MachineLoad,
}
_TUPLES = {"degenerate", "notes", "dimensions", "skipped_reasons"}


def build(cls: type, data: Mapping[str, Any] | None) -> Any:
    """An instance of the dataclass `cls` from its `to_dict` form. Keys `cls` does not know (a
    figure an older version wrote and this one dropped) are left out; missing ones take their
    defaults."""
    if data is None:
        return None
    known = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            continue
        kind = _NESTED.get(key)
        if isinstance(kind, tuple):
            value = tuple(build(kind[0], v) for v in value or ())
        elif kind is not None and isinstance(value, Mapping):
            value = build(kind, value)
        elif key in _TUPLES and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


@dataclass(frozen=True)
class RunResult:
    strategy: str
    seed: int
    schema: int = SCHEMA
    run_id: str | None = None  # the config hash: a rerun with other settings is a new run
    status: str = "failed"  # ok | diverged | failed | oom | interrupted | lost
    error: str | None = None
    profile: str | None = None
    model: ModelInfo | None = None
    device: Mapping[str, Any] | None = None
    metrics: Metrics | None = None
    efficiency: Efficiency | None = None
    compute: Compute | None = None
    data: DataInfo | None = None
    predictions: Predictions | None = None
    strategy_spec: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    traceback: str | None = None
    pid: int | None = None
    exitcode: int | None = None  # of a run process that ended without writing its result
    log: str | None = None  # the run's output (bench/result/store.py:log_path)
    launch: Mapping[str, Any] | None = None  # how a scheduler ran it (Slurm job id, log, ...)
    migrated_from_schema: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        return build(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RunResult:
        return dataclasses.replace(self, **changes)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def fold(self) -> int | None:
        """The IEMOCAP fold held out for test, if the run was cross-validated."""
        cfg = self.config or {}
        fold = (cfg.get("data") or cfg).get("fold")
        return None if fold is None else int(fold)

    @property
    def dimensions(self) -> tuple[str, ...]:
        """The label dimensions, in the corpus's order; () when the run stored none."""
        for dims in (
            self.predictions and self.predictions.dimensions,
            self.data and self.data.dimensions,
            self.metrics and tuple(self.metrics.ccc),
        ):
            if dims:
                return tuple(str(d) for d in dims)
        return ()

    def sweep_hash(self) -> str | None:
        """The sweep hash of the run's configuration (`RunConfig.sweep_hash`: what one sweep's
        runs share), or None when the result holds no config this version can read."""
        if not self.config:
            return None
        try:
            return RunConfig.from_dict(dict(self.config)).sweep_hash()
        except (KeyError, TypeError, ValueError):
            return None

    def figures(self) -> dict[str, float | None]:
        """Every numeric figure of the run by name (None where not measured): the efficiency
        sections' fields, and each figure declared anywhere else in the result. The per-run
        frame and results.csv have one column per name."""
        out: dict[str, float | None] = {k: None for k in declared(Metrics)}  # quality first
        if self.efficiency is not None:
            for section in self.efficiency.sections():
                out |= numeric_fields(section)
        for cls, obj in _DECLARING:
            section = obj(self)
            for key in declared(cls):
                v = getattr(section, key, None) if section is not None else None
                out[key] = None if v is None or isinstance(v, bool) else float(v)
        return out


_DECLARING: tuple[tuple[type, Any], ...] = (
    (Metrics, lambda r: r.metrics),
    (ModelInfo, lambda r: r.model),
    (DataInfo, lambda r: r.data),
    (Compute, lambda r: r.compute),
    (ThroughputReport, lambda r: r.efficiency and r.efficiency.throughput),
    (AllocatorReport, lambda r: r.efficiency and r.efficiency.allocator),
    (MemoryReport, lambda r: r.efficiency and r.efficiency.memory),
    (EnergyReport, lambda r: r.efficiency and r.efficiency.energy),
    (RunTimes, lambda r: r.efficiency and r.efficiency.time),
    (Efficiency, lambda r: r.efficiency),
)


def result_figures() -> dict[str, Metric]:
    """Every figure a result declares, by key (a key is unique across sections)."""
    out: dict[str, Metric] = {}
    for cls, _ in _DECLARING:
        out |= declared(cls)
    return out
