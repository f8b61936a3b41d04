"""Turn the trackers' reports into the `efficiency` and `compute` sections of a result."""

from __future__ import annotations

from bench.meter.memory import MemoryReport
from bench.meter.timing import ThroughputReport


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
    """Plain dict of every efficiency figure, units in the key names; None where not measured."""
    epochs = len(epoch_times)
    energy = mem.energy_j
    return {
        "train_samples_per_s": thr.train_samples_per_s,
        "train_audio_s_per_s": thr.train_audio_s_per_s,
        "train_padded_audio_s_per_s": thr.train_padded_audio_s_per_s,
        "steps_timed": thr.steps_timed,
        "warmup_steps": thr.warmup_steps,
        "step_time_p50_s": thr.step_time_p50_s,
        "step_time_p90_s": thr.step_time_p90_s,
        "step_time_p99_s": thr.step_time_p99_s,
        "step_time_cv": thr.step_time_cv,
        "shape_warmup_steps": thr.shape_warmup_steps,
        "shape_warmup_s": thr.shape_warmup_s,
        "distinct_input_shapes": thr.distinct_input_shapes,
        "stall_steps": thr.stall_steps,
        "stall_s": thr.stall_s,
        "stall_share": thr.stall_share,
        "epoch_time_s": sum(epoch_times) / epochs if epochs else None,
        "epochs": epochs,
        "cache_build_s": cache_build_s,
        "cache_mib": cache_mib,
        "time_to_best_val_s": time_to_best_s,
        "train_wall_s": train_wall_s,  # cache build, training epochs and validation
        "peak_vram_nvml_mib": mem.peak_vram_nvml_mib,
        "nvml_source": mem.nvml_source,
        "mean_vram_nvml_mib": mem.mean_vram_nvml_mib,
        "p99_vram_nvml_mib": mem.p99_vram_nvml_mib,
        "peak_device_used_mib": mem.peak_device_used_mib,
        "device_baseline_mib": mem.device_baseline_mib,
        "peak_vram_alloc_mib": thr.alloc_peak_mib,  # the whole run's, cache build included
        "peak_vram_reserved_mib": thr.reserved_peak_mib,
        "alloc_peak_cache_mib": thr.alloc_peak_cache_mib,
        "alloc_peak_train_mib": thr.alloc_peak_train_mib,
        "alloc_mean_train_mib": thr.alloc_mean_train_mib,
        "alloc_p99_train_mib": thr.alloc_p99_train_mib,
        "alloc_peak_warmup_mib": thr.alloc_peak_warmup_mib,
        "alloc_peak_eval_mib": thr.alloc_peak_eval_mib,
        "gpu_util_mean_pct": mem.gpu_util_mean_pct,
        "energy_j": energy,
        "energy_j_per_epoch": None if energy is None or not epochs else energy / epochs,
        "energy_j_per_sample": None
        if energy is None or not samples_trained
        else energy / samples_trained,
        "nvml_samples": mem.nvml_samples,
        "peak_rss_mib": mem.peak_rss_mib,
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
