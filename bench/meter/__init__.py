"""Trackers, one per figure, each a context manager with a plain result dataclass.

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
