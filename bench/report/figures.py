"""The figures a report shows, in the order it shows them.

Each figure is declared once, on the result field that holds it (`bench/result/sections.py`,
`figure(...)`: label, unit, direction, format). This module only adds the figures the report
computes itself (CCC per dimension, speed-up) and picks the table's columns; the table, the
"best" marks, the Pareto fronts, `--compare` / `--fail-on` and the plot axes all read the same
declarations, so any pair of figures can be plotted against each other.
"""

from __future__ import annotations

from bench.errors import BenchError
from bench.report.target import ToTarget
from bench.result import Metric, declared, result_figures
from bench.result.figure import format_count

__all__ = ["FIGURES", "Metric", "figure_catalogue", "find_figure", "format_count", "table_metrics"]

FIGURES: dict[str, Metric] = result_figures()

DIM_SHORT = {"arousal": "aro", "valence": "val", "dominance": "dom", "activation": "act"}


def ccc_metric(dimension: str) -> Metric:
    short = DIM_SHORT.get(dimension, dimension[:4])
    return Metric(
        f"ccc_{dimension}", f"CCC {short}", "", True, ".3f", help=f"test CCC, {dimension}"
    )


SPEEDUP = Metric(
    "speedup",
    "speed-up",
    "×",
    True,
    ".2f",
    help="training samples/s over full (fp32) at the same seed, then averaged over seeds",
)
CCC_MEAN = FIGURES["ccc_mean"]
SAMPLES_PER_S = FIGURES["train_samples_per_s"]
HARNESS = FIGURES["harness_efficiency"]
EPOCH_TIME = FIGURES["epoch_time_s"]
CACHE_BUILD = FIGURES["cache_build_s"]
VRAM_NVML = FIGURES["peak_vram_nvml_mib"]
VRAM_ALLOC = FIGURES["peak_vram_alloc_mib"]
RSS = FIGURES["peak_rss_mib"]
ENERGY = FIGURES["energy_j_per_epoch"]
PARAMS = FIGURES["params_trainable"]
SHARE = FIGURES["trainable_share"]
# Computed by the report (bench/report/target.py): they depend on the baseline's runs.
TARGET_FIGURES: dict[str, Metric] = declared(ToTarget)
TARGET_KEYS = tuple(TARGET_FIGURES)
TARGET_CCC = TARGET_FIGURES["target_ccc"]
TIME_TO_TARGET = TARGET_FIGURES["time_to_target_s"]
SAMPLES_TO_TARGET = TARGET_FIGURES["samples_to_target"]
ENERGY_TO_TARGET = TARGET_FIGURES["energy_to_target_j"]

# The comparison table's cost columns, left to right.
EFFICIENCY: tuple[Metric, ...] = (
    SPEEDUP,
    SAMPLES_PER_S,
    HARNESS,
    EPOCH_TIME,
    CACHE_BUILD,
    FIGURES["train_wall_s"],
    TIME_TO_TARGET,
    SAMPLES_TO_TARGET,
    ENERGY_TO_TARGET,
    VRAM_NVML,
    VRAM_ALLOC,
    RSS,
    ENERGY,
    PARAMS,  # the table shows SHARE inside this column: one column less on a laptop screen
)


def table_metrics(dimensions: tuple[str, ...]) -> tuple[Metric, ...]:
    """The comparison table's columns, left to right: quality first, then cost."""
    return (*(ccc_metric(d) for d in dimensions), CCC_MEAN, *EFFICIENCY)


def figure_catalogue(dimensions: tuple[str, ...]) -> tuple[Metric, ...]:
    """Every figure a report knows: the table's columns first, then every other declared one."""
    shown = table_metrics(dimensions)
    keys = {m.key for m in shown}
    others = FIGURES | TARGET_FIGURES
    return shown + tuple(m for k, m in others.items() if k not in keys)


def find_figure(name: str, dimensions: tuple[str, ...]) -> Metric:
    """The figure called `name` (its key, e.g. peak_vram_alloc_mib, or its label)."""
    figures = figure_catalogue(dimensions)
    for m in figures:
        if name.strip().lower() in (m.key.lower(), m.label.lower()):
            return m
    raise BenchError(
        f"unknown figure {name!r} for --fail-on; figures: {', '.join(m.key for m in figures)}"
    )
