"""The catalogue of figures a report shows: label, unit, and which direction is better.

One declaration per figure; the table, the "best" marks, the Pareto fronts, the regression checks
and the plot axes all read it, so any pair of figures can be plotted against each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    key: str  # column of the per-run frame
    label: str  # short column header
    unit: str  # "" when dimensionless
    higher_is_better: bool
    fmt: str = ".2f"  # format spec of one value; "count" and "percent" are special
    mark_best: bool = (
        True  # some columns have no meaningful "best" (cache build of non-cached runs)
    )
    help: str = ""  # one line: how it is measured
    absent: str = "n/a"  # what an empty cell says ("—" where the figure does not apply)

    @property
    def axis_label(self) -> str:
        """The label of a plot axis, with its unit (every axis says what it counts)."""
        return f"{self.label} ({self.unit})" if self.unit else f"{self.label} (unitless)"

    @property
    def header(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit and self.unit != "×" else self.label

    def format(self, v: float | None) -> str:
        if v is None or not math.isfinite(v):
            return "n/a"
        if self.fmt == "count":
            return format_count(v)
        if self.fmt == "percent":
            return f"{100 * v:.2f}%"
        text = format(v, self.fmt)
        return f"{text}×" if self.unit == "×" else text

    def better(self, a: float, b: float) -> bool:
        """Is `a` strictly better than `b`?"""
        return a > b if self.higher_is_better else a < b


def format_count(n: float) -> str:
    """48723 -> 48.7k; 94.4e6 -> 94.40M."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}G"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{int(n)}"


DIM_SHORT = {"arousal": "aro", "valence": "val", "dominance": "dom", "activation": "act"}


def ccc_metric(dimension: str) -> Metric:
    short = DIM_SHORT.get(dimension, dimension[:4])
    return Metric(
        f"ccc_{dimension}", f"CCC {short}", "", True, ".3f", help=f"test CCC, {dimension}"
    )


CCC_MEAN = Metric(
    "ccc_mean", "CCC mean", "", True, ".3f", help="test CCC averaged over the dimensions"
)
SPEEDUP = Metric(
    "speedup",
    "speed-up",
    "×",
    True,
    ".2f",
    help="training samples/s over full (fp32) at the same seed, then averaged over seeds",
)
SAMPLES_PER_S = Metric(
    "train_samples_per_s",
    "throughput",
    "samples/s",
    True,
    ".1f",
    help="steady-state training samples/s, warm-up excluded, device synchronised",
)
HARNESS = Metric(
    "harness_efficiency",
    "harness eff.",
    "",
    True,
    ".2f",
    mark_best=False,
    help="measured samples/s over the ceiling: the same step on one fixed batch on the device, "
    "no loader, no meter, at the run's mean padded length (near 1: the harness measured the "
    "strategy, not itself)",
)
AUDIO_PER_S = Metric(
    "train_audio_s_per_s", "audio throughput", "audio-s/s", True, ".1f", help="audio seconds/s"
)
EPOCH_TIME = Metric("epoch_time_s", "epoch time", "s", False, ".2f", help="mean epoch wall time")
CACHE_BUILD = Metric(
    "cache_build_s",
    "cache build",
    "s",
    False,
    ".2f",
    mark_best=False,
    help="one-off time to run the frozen prefix over every clip (cached runs only; — without +cache)",
    absent="—",
)
TOTAL_TIME = Metric(
    "train_wall_s",
    "total time",
    "s",
    False,
    ".1f",
    help="wall time of the whole run: cache build, every epoch, validation and test",
)
VRAM_NVML = Metric(
    "peak_vram_nvml_mib",
    "peak VRAM NVML",
    "MiB",
    False,
    ".0f",
    help="driver's view: NVML per-process used memory, peak of a background sampler",
)
VRAM_ALLOC = Metric(
    "peak_vram_alloc_mib",
    "peak VRAM alloc",
    "MiB",
    False,
    ".0f",
    help="torch.cuda.max_memory_allocated (tensors only; no allocator cache, no CUDA context)",
)
RSS = Metric("peak_rss_mib", "peak RSS", "MiB", False, ".0f", help="host peak resident memory")
ENERGY = Metric(
    "energy_j_per_epoch",
    "energy per epoch",
    "J",
    False,
    ".0f",
    help="NVML total-energy counter over training, per epoch",
)
PARAMS = Metric(
    "params_trainable",
    "trainable params",
    "",
    False,
    "count",
    help="parameters that receive gradients (and their share of all parameters)",
)
SHARE = Metric(
    "trainable_share",
    "trainable share",
    "%",
    False,
    "percent",
    help="trainable / total parameters",
)

EFFICIENCY: tuple[Metric, ...] = (
    SPEEDUP,
    SAMPLES_PER_S,
    HARNESS,
    EPOCH_TIME,
    CACHE_BUILD,
    TOTAL_TIME,
    VRAM_NVML,
    VRAM_ALLOC,
    RSS,
    ENERGY,
    PARAMS,  # the table shows SHARE inside this column: one column less on a laptop screen
)


def table_metrics(dimensions: tuple[str, ...]) -> tuple[Metric, ...]:
    """The comparison table's columns, left to right: quality first, then cost."""
    return (*(ccc_metric(d) for d in dimensions), CCC_MEAN, *EFFICIENCY)
