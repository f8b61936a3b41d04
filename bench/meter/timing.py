"""Steady-state training throughput from device-synchronised step timestamps."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ThroughputReport:
    train_samples_per_s: float | None
    train_audio_s_per_s: float | None
    steps_timed: int
    warmup_steps: int
    step_time_p50_s: float | None
    step_time_p90_s: float | None
    note: str | None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer:
    """Times each training step from the end of the previous one (so waiting for data counts),
    after synchronising the device. The first `warmup_steps` steps of the run are excluded."""

    def __init__(self, device: torch.device, warmup_steps: int):
        self.device = device
        self.warmup_steps = warmup_steps
        self._seen = 0
        self._last: float | None = None
        self.durations: list[float] = []
        self.samples = 0
        self.audio_s = 0.0

    def start_epoch(self) -> None:
        synchronize(self.device)
        self._last = time.perf_counter()

    @contextmanager
    def step(self, n_samples: int, audio_s: float) -> Iterator[None]:
        yield
        synchronize(self.device)
        now = time.perf_counter()
        if self._last is not None and self._seen >= self.warmup_steps:
            self.durations.append(now - self._last)
            self.samples += n_samples
            self.audio_s += audio_s
        self._seen += 1
        self._last = now

    def report(self) -> ThroughputReport:
        total = sum(self.durations)
        if not self.durations or total <= 0:
            return ThroughputReport(
                None,
                None,
                0,
                self.warmup_steps,
                None,
                None,
                f"no steps after the {self.warmup_steps} warm-up steps; train longer or lower --warmup-steps",
            )
        q = (
            statistics.quantiles(self.durations, n=10)
            if len(self.durations) > 1
            else [self.durations[0]] * 9
        )
        return ThroughputReport(
            train_samples_per_s=self.samples / total,
            train_audio_s_per_s=self.audio_s / total,
            steps_timed=len(self.durations),
            warmup_steps=self.warmup_steps,
            step_time_p50_s=statistics.median(self.durations),
            step_time_p90_s=q[8],
            note=None,
        )
