"""GPU figures from NVML: per-process peak memory (sampled every `interval_s` by a separate process,
so the sampler never competes with training for the GIL), the device's used memory above its
baseline, mean utilisation and energy; plus torch's allocator peaks. Fields that cannot be
measured are None with a note saying why, never 0.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
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


# How long the sampler process may take to say "ready" (import pynvml, nvmlInit, find the
# device): a stuck driver call must become a note, not a run that never starts.
SAMPLER_READY_TIMEOUT_S = 30.0
SAMPLER_STOP_TIMEOUT_S = 30.0


class SamplerError(RuntimeError):
    """The NVML sampler process did not start or stop in time."""


def wait_ready(proc: subprocess.Popen, timeout_s: float) -> None:
    """Wait up to `timeout_s` for the sampler's "ready" line; kill it and raise SamplerError if
    it does not come (a hang, a crash, or other output). Reads the pipe's bytes directly, so a
    line never finished cannot block."""
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready = left > 0 and select.select([fd], [], [], left)[0]
        chunk = os.read(fd, 1) if ready else b""
        if not chunk:  # the deadline passed, or the sampler closed its output (it ended)
            break
        line += chunk
    if line.strip() != b"ready":
        proc.kill()
        proc.wait()
        said = f" (it wrote {line.decode(errors='replace').strip()!r})" if line.strip() else ""
        raise SamplerError(
            f"the NVML sampler process did not report ready within {timeout_s:g} s{said}"
        )


def _uuid(nv: ModuleType, handle: Any) -> str:
    u = nv.nvmlDeviceGetUUID(handle)
    return (u.decode() if isinstance(u, bytes) else u).replace("GPU-", "")


def visible_handle(nv: ModuleType, index: int) -> Any:
    """NVML's handle of CUDA device `index`, found without starting CUDA: CUDA_VISIBLE_DEVICES's
    entry for it (a GPU UUID, or an index) when set, else `index`. Indices are CUDA's order,
    which is NVML's (PCI bus) on machines of one GPU model; `track` verifies it by UUID."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    tokens = [t.strip() for t in visible.split(",")] if visible is not None else None
    token = tokens[index] if tokens is not None and index < len(tokens) else str(index)
    if token.startswith("GPU-"):
        return handle_for(nv, index, token)
    if token.startswith("MIG-"):
        return nv.nvmlDeviceGetHandleByUUID(token)
    return nv.nvmlDeviceGetHandleByIndex(int(token) if token.isdigit() else index)


class MemoryTracker:
    """`tracker.baseline()` before the run touches CUDA, then `with tracker.track(): ...`, then
    `tracker.report()`.

    `nvml` may be injected (tests use a fake module); it then samples in a thread, since a fake
    cannot cross into another process. With the real pynvml the sampler is a separate process.
    """

    def __init__(
        self,
        device: torch.device,
        interval_s: float = 0.01,
        nvml: ModuleType | None = None,
        require_idle: bool = False,
        ready_timeout_s: float = SAMPLER_READY_TIMEOUT_S,
    ):
        self.device = device
        self.ready_timeout_s = ready_timeout_s
        self.interval_s = interval_s
        self.injected = nvml is not None
        self.nvml = nvml if nvml is not None else _import_nvml()
        self.require_idle = require_idle
        self.notes: list[str] = []
        self._sampled: dict | None = None
        self._baseline: float | None = None
        self._energy_j: float | None = None
        self._handle: Any = None  # NVML's handle of the device, once baseline() found it
        self._baseline_taken = False

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
        proc = subprocess.Popen(
            self._sampler_argv(pid, uuid),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_ready(proc, self.ready_timeout_s)

        def finish() -> dict:
            try:
                out, _ = proc.communicate("stop\n", timeout=SAMPLER_STOP_TIMEOUT_S)
                return json.loads(out.strip().splitlines()[-1])
            except (subprocess.TimeoutExpired, ValueError, IndexError) as exc:
                proc.kill()
                proc.communicate()
                raise SamplerError(
                    f"the NVML sampler process gave no peaks when stopped ({type(exc).__name__})"
                ) from exc

        return finish

    def _sampler_argv(self, pid: int, uuid: str | None) -> list[str]:
        # Run by path, not as `-m bench.meter.nvml`: importing the package would import torch
        # (~4 s on a GPU host, paid before every run), and the sampler needs only pynvml.
        args = [
            sys.executable,
            str(Path(__file__).with_name("nvml.py")),
            str(pid),
            str(self.interval_s),
            str(self.device.index or 0),
        ]
        return args + ([uuid] if uuid else [])

    def _energy_mj(self, handle: Any) -> float | None:
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except (self.nvml.NVMLError, AttributeError) as exc:
            self.notes.append(
                f"NVML energy counter unavailable on this GPU ({exc}): energy not measured"
            )
            return None

    def baseline(self) -> None:
        """NVML's used memory and the idle check, taken before the run touches CUDA (call it
        before the model loads): the CUDA context and the weights are then the run's, not the
        baseline's, and a container that hides PIDs cannot mistake them for another process.
        The device is found without starting CUDA (`visible_handle`); `track` checks it
        against CUDA's UUID once CUDA runs. Raises BenchError when a required idle GPU is busy."""
        if self._baseline_taken or self.device.type != "cuda" or self.nvml is None:
            return
        self._baseline_taken = True
        try:
            self.nvml.nvmlInit()
            self._handle = visible_handle(self.nvml, self.device.index or 0)
            self._baseline, notes = check_idle(
                self.nvml, self._handle, {os.getpid()}, self.require_idle
            )
            self.notes += notes
        except BenchError:
            raise
        except Exception as exc:  # NVML missing or broken: the run goes on, measured without it
            self._handle = None
            self.notes.append(
                f"NVML unavailable ({type(exc).__name__}: {exc}): NVML figures not measured"
            )

    def _cuda_handle(self) -> tuple[Any, str | None]:
        """The handle CUDA's device has, by UUID (CUDA may order devices unlike NVML); when it
        is not the one the baseline was read from, the baseline is read again and says so."""
        index = self.device.index or 0
        uuid = (
            str(torch.cuda.get_device_properties(index).uuid) if torch.cuda.is_available() else None
        )
        if uuid is None or _uuid(self.nvml, self._handle) == uuid.replace("GPU-", ""):
            return self._handle, uuid
        handle = handle_for(self.nvml, index, uuid)
        self._baseline, notes = check_idle(self.nvml, handle, {os.getpid()}, self.require_idle)
        self.notes += notes
        self.notes.append(
            "NVML's device order differs from CUDA's: the baseline was read again after the "
            "run started CUDA, so device-delta figures miss its context and weights"
        )
        return handle, uuid

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
            self.baseline()  # no-op when the worker took it before the run touched CUDA
        if self._handle is not None:
            try:
                handle, uuid = self._cuda_handle()
                e0 = self._energy_mj(handle)
                finish = self._start_sampler(handle, uuid)
            except BenchError:
                raise
            except Exception as exc:  # a sampler that hangs or dies: measured without NVML
                self.notes.append(
                    f"NVML unavailable ({type(exc).__name__}: {exc}): NVML figures not measured"
                )
        try:
            yield self
        finally:
            if finish is not None:
                try:
                    self._sampled = finish()
                except SamplerError as exc:
                    self.notes.append(f"{exc}: NVML figures not measured")
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
