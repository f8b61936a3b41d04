"""The typed result of one run: its sections (sections.py), figure declarations (figure.py),
schema migration (migrate.py), the result a run starts from (start.py) and result files on disk
(store.py: atomic writes, the run folder's results, superseded results, sweep notes)."""

from bench.result.figure import Metric, declared, figure
from bench.result.migrate import migrate
from bench.result.run_result import SCHEMA, RunResult, build, result_figures
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

__all__ = [
    "SCHEMA",
    "AllocatorReport",
    "CacheReport",
    "Ceiling",
    "Compute",
    "DataInfo",
    "Efficiency",
    "EnergyReport",
    "EpochLog",
    "LoaderReport",
    "MachineLoad",
    "MemoryReport",
    "Metric",
    "Metrics",
    "ModelInfo",
    "Predictions",
    "RunResult",
    "RunTimes",
    "ThroughputReport",
    "build",
    "declared",
    "figure",
    "migrate",
    "result_figures",
]
