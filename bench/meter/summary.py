"""The run-level sections of a result that no single tracker owns: wall-clock times and compute."""

from __future__ import annotations

from bench.result.sections import Compute, RunTimes


def run_times(
    *,
    epoch_times: list[float],
    cache_build_s: float | None,
    train_wall_s: float,
    time_to_best_s: float | None,
    setup_s: float,
    cpu_time_s: float,
) -> RunTimes:
    epochs = len(epoch_times)
    return RunTimes(
        epochs=epochs,
        epoch_time_s=sum(epoch_times) / epochs if epochs else None,
        cache_build_s=cache_build_s,
        train_wall_s=train_wall_s,  # cache build, training epochs and validation
        time_to_best_val_s=time_to_best_s,
        setup_s=setup_s,
        cpu_time_s=cpu_time_s,
    )


def compute_section(
    flops_per_sample: float | None,
    audio_s_per_sample: float | None,
    samples_per_s: float | None,
    peak: float | None,
    peak_source: str,
) -> Compute:
    """Model FLOPs, achieved TFLOP/s and MFU (None with the reason where a figure is missing)."""
    achieved = (
        None
        if flops_per_sample is None or samples_per_s is None
        else flops_per_sample * samples_per_s / 1e12
    )
    return Compute(
        train_flops_per_sample=flops_per_sample,
        train_flops_per_audio_s=None
        if not flops_per_sample or not audio_s_per_sample
        else flops_per_sample / audio_s_per_sample,
        achieved_tflops=achieved,
        peak_tflops=peak,
        peak_source=peak_source,
        mfu=None if achieved is None or not peak else achieved / peak,
        method="analytic (bench/flops.py) at the mean padded clip length of timed steps",
    )
