"""Per-step figures of the training loop: device-synchronised step times and allocator peaks.

A step is timed from the end of the previous one (so waiting for data counts) after
synchronising the device. Warm-up (the first `warmup_steps` steps and the first `warmup_s`
seconds of the run, whichever ends later) is excluded from every steady-state figure. On CUDA
each step's allocator peak is read and reset at the same synchronisation point, which gives peak,
mean and p99 over steps with training and evaluation kept apart.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

MIB = 2**20


@dataclass(frozen=True)
class ThroughputReport:
    train_samples_per_s: float | None
    train_audio_s_per_s: float | None
    train_padded_audio_s_per_s: float | None  # includes the padding the model also computes on
    steps_timed: int
    warmup_steps: int  # steps actually excluded
    step_time_p50_s: float | None
    step_time_p90_s: float | None
    step_time_p99_s: float | None
    step_time_cv: float | None  # standard deviation / mean of steady-state step times
    alloc_peak_train_mib: float | None  # max over steady-state steps of torch's per-step peak
    alloc_mean_train_mib: float | None
    alloc_p99_train_mib: float | None
    alloc_peak_warmup_mib: float | None
    alloc_peak_eval_mib: float | None
    samples_timed: int
    padded_audio_s_per_sample: float | None
    note: str | None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile, q in [0, 1]."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


class StepTimer:
    def __init__(self, device: torch.device, warmup_steps: int, warmup_s: float = 0.0):
        self.device = device
        self.warmup_steps = warmup_steps
        self.warmup_s = warmup_s
        self.cuda = device.type == "cuda"
        self._seen = 0
        self._t0: float | None = None
        self._last: float | None = None
        self.durations: list[float] = []
        self.alloc_peaks: list[float] = []
        self.warmup_alloc_peak: float | None = None
        self.eval_alloc_peak: float | None = None
        self.samples = 0
        self.audio_s = 0.0
        self.padded_s = 0.0

    def _read_and_reset_peak(self) -> float | None:
        if not self.cuda:
            return None
        peak = torch.cuda.max_memory_allocated(self.device) / MIB
        torch.cuda.reset_peak_memory_stats(self.device)
        return peak

    def start_epoch(self) -> None:
        synchronize(self.device)
        self._last = time.perf_counter()
        if self._t0 is None:
            self._t0 = self._last
        self._read_and_reset_peak()

    def in_warmup(self) -> bool:
        elapsed = (self._last or 0.0) - (self._t0 or 0.0)
        return self._seen < self.warmup_steps or elapsed < self.warmup_s

    @contextmanager
    def step(
        self, n_samples: int, audio_s: float, padded_audio_s: float | None = None
    ) -> Iterator[None]:
        yield
        synchronize(self.device)
        now = time.perf_counter()
        peak = self._read_and_reset_peak()
        if self._last is not None and not self.in_warmup():
            self.durations.append(now - self._last)
            self.samples += n_samples
            self.audio_s += audio_s
            self.padded_s += audio_s if padded_audio_s is None else padded_audio_s
            if peak is not None:
                self.alloc_peaks.append(peak)
        elif peak is not None:
            self.warmup_alloc_peak = max(self.warmup_alloc_peak or 0.0, peak)
        self._seen += 1
        self._last = now

    @contextmanager
    def eval_phase(self) -> Iterator[None]:
        """Evaluation's allocator peak is kept apart from training's."""
        synchronize(self.device)
        self._read_and_reset_peak()
        yield
        synchronize(self.device)
        peak = self._read_and_reset_peak()
        if peak is not None:
            self.eval_alloc_peak = max(self.eval_alloc_peak or 0.0, peak)

    def report(self) -> ThroughputReport:
        total = sum(self.durations)
        d = self.durations
        excluded = self._seen - len(d)
        a = self.alloc_peaks
        mem = dict(
            alloc_peak_train_mib=max(a) if a else None,
            alloc_mean_train_mib=statistics.fmean(a) if a else None,
            alloc_p99_train_mib=quantile(a, 0.99) if a else None,
            alloc_peak_warmup_mib=self.warmup_alloc_peak,
            alloc_peak_eval_mib=self.eval_alloc_peak,
        )
        if not d or total <= 0:
            return ThroughputReport(
                None,
                None,
                None,
                0,
                excluded,
                None,
                None,
                None,
                None,
                **mem,
                samples_timed=0,
                padded_audio_s_per_sample=None,
                note=f"no steps after warm-up ({self.warmup_steps} steps / {self.warmup_s} s); "
                "train longer or lower the warm-up",
            )
        mean = statistics.fmean(d)
        return ThroughputReport(
            train_samples_per_s=self.samples / total,
            train_audio_s_per_s=self.audio_s / total,
            train_padded_audio_s_per_s=self.padded_s / total,
            steps_timed=len(d),
            warmup_steps=excluded,
            step_time_p50_s=quantile(d, 0.5),
            step_time_p90_s=quantile(d, 0.9),
            step_time_p99_s=quantile(d, 0.99),
            step_time_cv=statistics.pstdev(d) / mean if len(d) > 1 else 0.0,
            **mem,
            samples_timed=self.samples,
            padded_audio_s_per_sample=self.padded_s / self.samples,
            note=None,
        )
