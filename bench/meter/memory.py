"""GPU figures from NVML: per-process peak memory (sampled every `interval_s` by a separate process,
so the sampler never competes with training for the GIL), the device's used memory above its
baseline, mean utilisation and energy; plus torch's allocator peaks. Fields that cannot be
measured are None with a note saying why, never 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from bench.errors import BenchError
from bench.meter.host import peak_rss_mib
from bench.meter.nvml import MIB, device_processes, handle_for, sample_loop
from bench.result.sections import EnergyReport, MemoryReport


def _import_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def check_idle(
    nv: ModuleType, handle: Any, own_pids: set[int], require_idle: bool
) -> tuple[float, list[str]]:
    """Baseline used MiB and warnings about other processes on the device (an error if required idle)."""
    foreign = [p for p in device_processes(nv, handle) if p.pid not in own_pids]
    baseline = nv.nvmlDeviceGetMemoryInfo(handle).used / MIB
    notes = []
    if foreign:
        desc = ", ".join(f"pid {p.pid} ({(p.usedGpuMemory or 0) / MIB:.0f} MiB)" for p in foreign)
        msg = f"GPU not idle: other processes use it ({desc}); timings and memory may be disturbed"
        if require_idle:
            raise BenchError(msg + ". Stop them or drop --require-idle-gpu")
        notes.append(msg)
    return baseline, notes


class MemoryTracker:
    """`with tracker.track(): ...` then `tracker.report()`.

    `nvml` may be injected (tests use a fake module); it then samples in a thread, since a fake
    cannot cross into another process. With the real pynvml the sampler is a separate process.
    """

    def __init__(
        self,
        device: torch.device,
        interval_s: float = 0.01,
        nvml: ModuleType | None = None,
        require_idle: bool = False,
    ):
        self.device = device
        self.interval_s = interval_s
        self.injected = nvml is not None
        self.nvml = nvml if nvml is not None else _import_nvml()
        self.require_idle = require_idle
        self.notes: list[str] = []
        self._sampled: dict | None = None
        self._baseline: float | None = None
        self._energy_j: float | None = None

    def _start_sampler(self, handle: Any, uuid: str | None):
        pid = os.getpid()
        if self.injected:
            stop = threading.Event()
            box: dict = {}
            thread = threading.Thread(
                target=lambda: box.update(
                    sample_loop(self.nvml, handle, pid, self.interval_s, stop.wait)
                ),
                daemon=True,
            )
            thread.start()

            def finish() -> dict:
                stop.set()
                thread.join()
                return box

            return finish
        # Run by path, not as `-m bench.meter.nvml`: importing the package would import torch
        # (~4 s on a GPU host, paid before every run), and the sampler needs only pynvml.
        args = [
            sys.executable,
            str(Path(__file__).with_name("nvml.py")),
            str(pid),
            str(self.interval_s),
            str(self.device.index or 0),
        ]
        proc = subprocess.Popen(
            args + ([uuid] if uuid else []),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise RuntimeError("NVML sampler process did not start")

        def finish() -> dict:
            out, _ = proc.communicate("stop\n", timeout=30)
            return json.loads(out.strip().splitlines()[-1])

        return finish

    def _energy_mj(self, handle: Any) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except (self.nvml.NVMLError, AttributeError) as exc:
            self.notes.append(
                f"NVML energy counter unavailable on this GPU ({exc}): energy not measured"
            )
            return None

    @contextmanager
    def track(self) -> Iterator[MemoryTracker]:
        finish = handle = None
        e0 = None
        if self.device.type != "cuda":
            self.notes.append(
                f"no CUDA device (ran on {self.device.type}): GPU memory and energy not measured"
            )
        elif self.nvml is None:
            self.notes.append(
                "pynvml (nvidia-ml-py) not importable: NVML memory and energy not measured"
            )
        else:
            try:
                self.nvml.nvmlInit()
                uuid = (
                    str(torch.cuda.get_device_properties(self.device.index or 0).uuid)
                    if torch.cuda.is_available()
                    else None
                )
                handle = handle_for(self.nvml, self.device.index or 0, uuid)
                self._baseline, notes = check_idle(
                    self.nvml, handle, {os.getpid()}, self.require_idle
                )
                self.notes += notes
                e0 = self._energy_mj(handle)
                finish = self._start_sampler(handle, uuid)
            except BenchError:
                raise
            except Exception as exc:  # NVML missing or broken: the run goes on, measured without it
                self.notes.append(
                    f"NVML unavailable ({type(exc).__name__}: {exc}): NVML figures not measured"
                )
        try:
            yield self
        finally:
            if finish is not None:
                self._sampled = finish()
                if e0 is not None:
                    e1 = self._energy_mj(handle)
                    self._energy_j = None if e1 is None else (e1 - e0) / 1000

    def report(self) -> MemoryReport:
        """NVML's figures. torch's allocator peaks are the StepTimer's (`bench.meter.timing`),
        their one reader and resetter."""
        s = self._sampled or {}
        notes = list(self.notes)
        proc = s.get("peak_process_mib")
        source = "process" if proc is not None else None
        dev = s.get("peak_device_used_mib")
        if self._sampled is not None and proc is None:
            if dev is not None and self._baseline is not None:
                proc, source = dev - self._baseline, "device-delta"
                notes.append(
                    "NVML listed no memory for this process (containers can hide PIDs): "
                    "peak_vram_nvml_mib is the device's used memory minus its baseline"
                )
            else:
                notes.append(
                    "NVML gave no per-process or device reading: peak_vram_nvml_mib not measured"
                )
        return MemoryReport(
            peak_vram_nvml_mib=proc,
            nvml_source=source,
            mean_vram_nvml_mib=s.get("mean_process_mib"),
            p99_vram_nvml_mib=s.get("p99_process_mib"),
            peak_device_used_mib=dev,
            device_baseline_mib=self._baseline,
            nvml_samples=s.get("samples"),
            peak_rss_mib=peak_rss_mib(),
            notes=tuple(notes),
        )

    def energy(self, epochs: int, samples: int) -> EnergyReport:
        """NVML's energy counter over the tracked region, per epoch and per training sample
        (None where the counter could not be read), and the mean GPU utilisation."""
        e = self._energy_j
        return EnergyReport(
            energy_j=e,
            energy_j_per_epoch=None if e is None or not epochs else e / epochs,
            energy_j_per_sample=None if e is None or not samples else e / samples,
            gpu_util_mean_pct=(self._sampled or {}).get("util_mean_pct"),
        )
