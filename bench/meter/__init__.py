"""Trackers, one per figure, each a context manager with a plain result dataclass (timing,
memory, nvml, host), and what the machine is (environment.py: device, software; precision.py:
which reduced precisions the device runs in hardware).

Fields that cannot be measured on this machine are None with a note saying why, never 0.
"""

from bench.meter.host import peak_rss_mib
from bench.meter.memory import MemoryReport, MemoryTracker
from bench.meter.timing import StepTimer
from bench.result.sections import AllocatorReport, EnergyReport, ThroughputReport

__all__ = [
    "AllocatorReport",
    "EnergyReport",
    "MemoryReport",
    "MemoryTracker",
    "StepTimer",
    "ThroughputReport",
    "peak_rss_mib",
]
