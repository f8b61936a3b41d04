"""The machine's load while a run trains: load average and other processes' CPU share.

A throughput timed while other processes compete for the CPU (a shared 2-core machine, a busy
login node) measures the machine as much as the strategy; the report flags such runs. Linux
only (/proc/stat, os.getloadavg); elsewhere the figures are None with a note saying why.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.meter.host import cpu_time_s
from bench.result.sections import MachineLoad

SAMPLE_EVERY_S = 1.0  # load-average sampling period (it is a 1-minute average: no need for more)


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat's first line."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    # guest and guest_nice (fields 9, 10) are already counted in user and nice
    total = sum(ticks[:8])
    return total - idle, total


class LoadTracker:
    """`with tracker.track(): ...` then `tracker.report()`: load average at the start, at the end
    and its maximum (sampled every `SAMPLE_EVERY_S`), and the share of all CPUs' time other
    processes used over the tracked region."""

    def __init__(self, sample_every_s: float = SAMPLE_EVERY_S) -> None:
        self.sample_every_s = sample_every_s
        self._start: float | None = None
        self._end: float | None = None
        self._max: float | None = None
        self._others: float | None = None
        self._note: str | None = None

    def _sample(self, stop: threading.Event) -> None:
        while not stop.wait(self.sample_every_s):
            v = _loadavg()
            if v is not None:
                self._max = v if self._max is None else max(self._max, v)

    @contextmanager
    def track(self) -> Iterator[LoadTracker]:
        self._start = self._max = _loadavg()
        jiffies0, own0, wall0 = _cpu_jiffies(), cpu_time_s(), time.perf_counter()
        stop = threading.Event()
        sampler = threading.Thread(target=self._sample, args=(stop,), daemon=True)
        sampler.start()
        try:
            yield self
        finally:
            stop.set()
            sampler.join()
            self._end = _loadavg()
            if self._end is not None:
                self._max = self._end if self._max is None else max(self._max, self._end)
            jiffies1, own1, wall = _cpu_jiffies(), cpu_time_s(), time.perf_counter() - wall0
            cpus = os.cpu_count() or 1
            if jiffies0 is None or jiffies1 is None:
                self._note = "other processes' CPU share not measured: no /proc/stat"
            elif wall > 0:
                busy_s = (jiffies1[0] - jiffies0[0]) / os.sysconf("SC_CLK_TCK")
                # Loader workers still alive are not yet in our children's CPU time, so this
                # may count some of the run's own work as others': an upper bound.
                others = max(0.0, busy_s - (own1 - own0))
                self._others = min(1.0, others / (wall * cpus))
            if self._start is None:
                self._note = "load average not available on this platform"

    def report(self) -> MachineLoad:
        return MachineLoad(
            cpus=os.cpu_count(),
            loadavg_1m_start=self._start,
            loadavg_1m_end=self._end,
            loadavg_1m_max=self._max,
            others_cpu_share=self._others,
            note=self._note,
        )
