"""Per-step figures of the training loop: device-synchronised step times and allocator peaks.

A step is timed from the end of the previous one (so waiting for data counts) after
synchronising the device. Warm-up (the first `warmup_steps` steps and the first `warmup_s`
seconds of the run, whichever ends later) is excluded from every steady-state figure, and so
are first visits: a step at an input shape not trained on before (new cuDNN plans), a step during
which a CUDA graph was captured, and the step after any capture (see `StepTimer`). On CUDA
each step's allocator peak is read and reset at the same synchronisation point, which gives peak,
mean and p99 over steps with training and evaluation kept apart.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from bench.result.sections import AllocatorReport, ThroughputReport

MIB = 2**20
STALL_FACTOR = 3.0
# Steps set aside after a CUDA graph capture (+graph): entering `torch.cuda.graph` synchronises
# and empties the allocator's cached blocks, so the step after it allocates afresh.
AFTER_CAPTURE_STEPS = 1


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


@dataclass
class _Step:
    mark: object  # a point on the device's timeline: a CUDA event, or perf_counter seconds
    kind: str  # warmup | shape (a first visit: new input shape, or a graph capture) | steady
    n_samples: int
    audio_s: float
    padded_s: float
    peak: float | None


class StepTimer:
    """Times training steps on the device's own timeline.

    On CUDA each step's end is a CUDA event, recorded without waiting: the host keeps queueing
    work, so the timer adds no synchronisation per step (one that would idle the GPU while the
    host launches the next step). The time between two events still counts everything the GPU
    waited for, data included. Events are resolved once per epoch (and before evaluation).
    On a CPU, steps run synchronously and perf_counter is the clock.
    """

    def __init__(
        self,
        device: torch.device,
        warmup_steps: int,
        warmup_s: float = 0.0,
        captures: Callable[[], int] | None = None,
    ):
        """`captures`: how many CUDA graphs have been captured so far (+graph's runner), read
        at each step's start and end: a step during which one was captured, and the
        AFTER_CAPTURE_STEPS steps after any capture (in a step, in evaluation, anywhere), are
        first visits, not steady steps."""
        self.device = device
        self.captures = captures
        self._captures_seen = 0
        self._after_capture = 0  # steps still to set aside after the last capture
        self.capture_warmup_steps = 0  # steps set aside for a capture alone (not a new shape)
        self.warmup_steps = warmup_steps
        self.warmup_s = warmup_s
        self.cuda = device.type == "cuda"
        self._seen = 0
        self._t0: float | None = None  # host clock at the first epoch's start, for warmup_s
        self._epoch_mark: object | None = None
        self._pending: list[_Step] = []
        self.durations: list[float] = []
        self.alloc_peaks: list[float] = []
        self.warmup_alloc_peak: float | None = None
        self.phase_alloc_peaks: dict[str, float] = {}  # eval, cache: kept apart from training's
        self.alloc_peak: float | None = None
        self.reserved_peak: float | None = None
        self.samples = 0
        self.audio_s = 0.0
        self.padded_s = 0.0
        self.shapes: set = set()
        self.shape_warmup_steps = 0
        self.shape_warmup_s = 0.0

    def _read_and_reset_peak(self) -> float | None:
        """Allocated-memory peak since the last reset (MiB), then reset; the reserved peak goes
        into the run's maximum. The caching allocator keeps these on the host as work is
        queued: reading them needs no synchronisation."""
        if not self.cuda:
            return None
        peak = torch.cuda.max_memory_allocated(self.device) / MIB
        reserved = torch.cuda.max_memory_reserved(self.device) / MIB
        torch.cuda.reset_peak_memory_stats(self.device)
        self.alloc_peak = max(self.alloc_peak or 0.0, peak)
        self.reserved_peak = max(self.reserved_peak or 0.0, reserved)
        return peak

    def _mark(self) -> object:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def _seconds(self, a: object, b: object) -> float:
        return a.elapsed_time(b) / 1000 if self.cuda else b - a  # type: ignore[attr-defined,operator]

    def start_epoch(self) -> None:
        self._flush()
        synchronize(self.device)
        if self._t0 is None:
            self._t0 = time.perf_counter()
        self._epoch_mark = self._mark()
        self._read_and_reset_peak()

    def in_warmup(self) -> bool:
        elapsed = time.perf_counter() - (self._t0 or 0.0)
        return self._seen < self.warmup_steps or elapsed < self.warmup_s

    @contextmanager
    def step(
        self,
        n_samples: int,
        audio_s: float,
        padded_audio_s: float | None = None,
        shape: tuple | None = None,
    ) -> Iterator[None]:
        """Time one step; `shape` (the input's shape) marks a first visit to be kept apart."""
        before = self.captures() if self.captures else 0
        yield
        mark = self._mark()
        peak = self._read_and_reset_peak()
        first_visit = shape is not None and shape not in self.shapes
        if shape is not None:
            self.shapes.add(shape)
        after = self.captures() if self.captures else 0
        # A capture since the last step (evaluation captures its own shapes) makes this step the
        # one after a capture; a capture in this step makes it a first visit and the next one
        # the step after.
        if before > self._captures_seen:
            self._after_capture = max(self._after_capture, AFTER_CAPTURE_STEPS)
        captured = after > before or self._after_capture > 0
        self._after_capture = (
            AFTER_CAPTURE_STEPS if after > before else max(0, self._after_capture - 1)
        )
        self._captures_seen = after
        kind = "warmup" if self.in_warmup() else "shape" if first_visit or captured else "steady"
        if kind == "shape" and not first_visit:
            self.capture_warmup_steps += 1
        padded = audio_s if padded_audio_s is None else padded_audio_s
        self._pending.append(_Step(mark, kind, n_samples, audio_s, padded, peak))
        self._seen += 1

    def _flush(self) -> None:
        """Resolve the queued steps' durations (one synchronisation for all of them)."""
        if not self._pending:
            return
        synchronize(self.device)
        prev = self._epoch_mark
        for st in self._pending:
            d = self._seconds(prev, st.mark)
            prev = st.mark
            if st.kind == "steady":
                self.durations.append(d)
                self.samples += st.n_samples
                self.audio_s += st.audio_s
                self.padded_s += st.padded_s
                if st.peak is not None:
                    self.alloc_peaks.append(st.peak)
                continue
            if st.kind == "shape":
                self.shape_warmup_steps += 1
                self.shape_warmup_s += d
            if st.peak is not None:
                self.warmup_alloc_peak = max(self.warmup_alloc_peak or 0.0, st.peak)
        self._epoch_mark = prev
        self._pending.clear()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """A stretch outside the training steps (evaluation, building the prefix cache), whose
        allocator peak is kept apart from training's under `name`."""
        self._flush()
        synchronize(self.device)
        self._read_and_reset_peak()
        yield
        synchronize(self.device)
        peak = self._read_and_reset_peak()
        if peak is not None:
            self.phase_alloc_peaks[name] = max(self.phase_alloc_peaks.get(name, 0.0), peak)

    def report(self) -> ThroughputReport:
        self._flush()
        total = sum(self.durations)
        d = self.durations
        excluded = self._seen - len(d)
        if not d or total <= 0:
            return ThroughputReport(
                warmup_steps=excluded,
                **self._shape_figures(),
                note=f"no steady steps after warm-up ({self.warmup_steps} steps / {self.warmup_s} s) "
                f"and the first visit of each input shape ({len(self.shapes)} shapes) or graph "
                "capture; train longer or lower the warm-up",
            )
        mean = statistics.fmean(d)
        median = quantile(d, 0.5)
        stalls = [x for x in d if x > STALL_FACTOR * median]
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
            samples_timed=self.samples,
            padded_audio_s_per_sample=self.padded_s / self.samples,
            **self._shape_figures(),
            stall_steps=len(stalls),
            stall_s=sum(stalls),
            stall_share=sum(stalls) / total,
        )

    def allocator(self) -> AllocatorReport:
        """torch's allocator peaks: per steady step, warm-up, evaluation, cache build, whole run
        (None without CUDA)."""
        self._flush()
        a = self.alloc_peaks
        return AllocatorReport(
            peak_vram_alloc_mib=self.alloc_peak,
            peak_vram_reserved_mib=self.reserved_peak,
            alloc_peak_train_mib=max(a) if a else None,
            alloc_mean_train_mib=statistics.fmean(a) if a else None,
            alloc_p99_train_mib=quantile(a, 0.99) if a else None,
            alloc_peak_warmup_mib=self.warmup_alloc_peak,
            alloc_peak_eval_mib=self.phase_alloc_peaks.get("eval"),
            alloc_peak_cache_mib=self.phase_alloc_peaks.get("cache"),
        )

    def _shape_figures(self) -> dict:
        return dict(
            shape_warmup_steps=self.shape_warmup_steps,
            shape_warmup_s=self.shape_warmup_s,
            distinct_input_shapes=len(self.shapes),
            capture_warmup_steps=self.capture_warmup_steps,
        )
