"""Turn the trackers' reports into the `efficiency` and `compute` sections of a result."""

from __future__ import annotations

from dataclasses import asdict

from bench.meter.memory import MemoryReport
from bench.meter.timing import ThroughputReport

# Result keys that differ from the trackers' field names (results of earlier versions use them).
RESULT_KEYS = {
    "alloc_peak_mib": "peak_vram_alloc_mib",
    "reserved_peak_mib": "peak_vram_reserved_mib",
}
_NOT_FIGURES = {"note", "notes", "unit"}


def efficiency_section(
    thr: ThroughputReport,
    mem: MemoryReport,
    *,
    epoch_times: list[float],
    cache_build_s: float | None,
    cache_mib: float | None,
    train_wall_s: float,
    time_to_best_s: float | None,
    samples_trained: int,
    cpu_time_s: float,
) -> dict:
    """Plain dict of every efficiency figure, units in the key names; None where not measured.

    Every field of the trackers' reports is a figure here under its own name: a figure added to
    a tracker reaches the result, results.csv and the report's frame with no further edit."""
    figures = {
        RESULT_KEYS.get(k, k): v
        for k, v in (asdict(thr) | asdict(mem)).items()
        if k not in _NOT_FIGURES
    }
    epochs = len(epoch_times)
    energy = mem.energy_j
    return figures | {
        "epoch_time_s": sum(epoch_times) / epochs if epochs else None,
        "epochs": epochs,
        "cache_build_s": cache_build_s,
        "cache_mib": cache_mib,
        "time_to_best_val_s": time_to_best_s,
        "train_wall_s": train_wall_s,  # cache build, training epochs and validation
        "energy_j_per_epoch": None if energy is None or not epochs else energy / epochs,
        "energy_j_per_sample": None
        if energy is None or not samples_trained
        else energy / samples_trained,
        "cpu_time_s": cpu_time_s,
    }


def compute_section(
    flops_per_sample: float | None,
    audio_s_per_sample: float | None,
    samples_per_s: float | None,
    peak: float | None,
    peak_source: str,
) -> dict:
    """Model FLOPs, achieved TFLOP/s and MFU (None with the reason where a figure is missing)."""
    achieved = (
        None
        if flops_per_sample is None or samples_per_s is None
        else flops_per_sample * samples_per_s / 1e12
    )
    return {
        "train_flops_per_sample": flops_per_sample,
        "train_flops_per_audio_s": None
        if not flops_per_sample or not audio_s_per_sample
        else flops_per_sample / audio_s_per_sample,
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "peak_source": peak_source,
        "mfu": None if achieved is None or not peak else achieved / peak,
        "method": "analytic (bench/flops.py) at the mean padded clip length of timed steps",
    }
