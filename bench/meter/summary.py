"""The run-level timing section of a result, which no single tracker owns."""

from __future__ import annotations

from bench.result.sections import RunTimes


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
