"""GPU memory: NVML per-process peak sampled in a background thread, plus torch's allocator peaks."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType

import torch

from bench.meter.host import peak_rss_mib

MIB = 1024 * 1024


@dataclass(frozen=True)
class MemoryReport:
    unit: str = "MiB"
    peak_vram_nvml_mib: float | None = None  # NVML: this process's used device memory (driver view)
    peak_vram_alloc_mib: float | None = None  # torch.cuda.max_memory_allocated: live tensors
    peak_vram_reserved_mib: float | None = None  # torch.cuda.max_memory_reserved: allocator's pool
    peak_rss_mib: float | None = None
    notes: tuple[str, ...] = field(default=())


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


class MemoryTracker:
    """`with tracker.track(): ...` then `tracker.report()`.

    `nvml` may be injected (tests use a fake module); by default pynvml is used when importable.
    """

    def __init__(
        self, device: torch.device, interval_s: float = 0.01, nvml: ModuleType | None = None
    ):
        self.device = device
        self.interval_s = interval_s
        self.nvml = nvml if nvml is not None else _import_nvml()
        self.notes: list[str] = []
        self._peak_bytes: int | None = None
        self._stop = threading.Event()
        self._alloc = self._reserved = None

    def _handle(self):
        nv = self.nvml
        index = self.device.index or 0
        if torch.cuda.is_available():
            # Match by UUID: NVML enumerates by PCI bus, CUDA by speed, unless CUDA_DEVICE_ORDER says otherwise.
            uuid = str(torch.cuda.get_device_properties(index).uuid)
            for i in range(nv.nvmlDeviceGetCount()):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                u = nv.nvmlDeviceGetUUID(h)
                u = u.decode() if isinstance(u, bytes) else u
                if u.replace("GPU-", "") == uuid.replace("GPU-", ""):
                    return h
        return nv.nvmlDeviceGetHandleByIndex(index)

    def _sample_forever(self, handle) -> None:
        nv, pid = self.nvml, os.getpid()
        per_process_seen = False
        while True:
            try:
                procs = nv.nvmlDeviceGetComputeRunningProcesses(handle)
            except nv.NVMLError:
                procs = []
            used = [p.usedGpuMemory for p in procs if p.pid == pid and p.usedGpuMemory]
            if used:
                per_process_seen = True
                self._peak_bytes = max(self._peak_bytes or 0, sum(used))
            if self._stop.wait(self.interval_s):
                break
        if not per_process_seen:
            self.notes.append(
                "NVML listed no memory for this process (containers can hide PIDs); peak_vram_nvml_mib is empty"
            )

    @contextmanager
    def track(self) -> Iterator[MemoryTracker]:
        thread = None
        if self.device.type != "cuda":
            self.notes.append(
                f"no CUDA device (ran on {self.device.type}): GPU memory not measured"
            )
        elif self.nvml is None:
            self.notes.append("pynvml (nvidia-ml-py) not importable: NVML memory not measured")
        else:
            try:
                self.nvml.nvmlInit()
                handle = self._handle()
                thread = threading.Thread(target=self._sample_forever, args=(handle,), daemon=True)
                thread.start()
            except Exception as exc:  # any NVML failure leaves the run measurable without it
                self.notes.append(f"NVML unavailable ({exc}): NVML memory not measured")
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            yield self
        finally:
            if thread is not None:
                self._stop.set()
                thread.join()
            if self.device.type == "cuda":
                self._alloc = torch.cuda.max_memory_allocated(self.device) / MIB
                self._reserved = torch.cuda.max_memory_reserved(self.device) / MIB

    def report(self) -> MemoryReport:
        return MemoryReport(
            peak_vram_nvml_mib=None if self._peak_bytes is None else self._peak_bytes / MIB,
            peak_vram_alloc_mib=self._alloc,
            peak_vram_reserved_mib=self._reserved,
            peak_rss_mib=peak_rss_mib(),
            notes=tuple(self.notes),
        )
