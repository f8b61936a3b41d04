"""--launcher gpus: every GPU of this machine busy, one run per GPU at a time.

Each run is a submitit LocalExecutor job whose CUDA_VISIBLE_DEVICES holds its one device, so the
run sees it as cuda:0 and its NVML sampling, idle check and recorded device are that GPU's
(the meter matches NVML to CUDA by UUID). `DevicePool` is the scheduler: it starts a queued job
when a device has none running, in submission order.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.meter.nvml import process_tree

# LocalExecutor stops a job after `timeout_min` (default 2). A run has no limit here: a week.
NO_LIMIT_MIN = 7 * 24 * 60
RUNNING = "RUNNING"


def visible_devices() -> list[str]:
    """What CUDA_VISIBLE_DEVICES should say for each device this process can see, by torch's
    index: the entries of an inherited CUDA_VISIBLE_DEVICES (indices or UUIDs), else 0..n-1."""
    import torch

    n = torch.cuda.device_count()
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    if inherited is not None:
        tokens = [t.strip() for t in inherited.split(",") if t.strip()]
        return tokens[:n]
    return [str(i) for i in range(n)]


def choose_devices(requested: Sequence[int] | None, visible: Sequence[str]) -> list[str]:
    """The CUDA_VISIBLE_DEVICES value of each device the sweep may use (--gpus picks by index)."""
    if not visible:
        raise BenchError(
            "--launcher gpus: this machine shows no CUDA GPU (torch.cuda.device_count() is 0); "
            "use --launcher local"
        )
    if requested is None:
        return list(visible)
    bad = [i for i in requested if i >= len(visible)]
    if bad:
        raise BenchError(
            f"--gpus {','.join(map(str, requested))}: this machine shows {len(visible)} GPU(s), "
            f"indices 0-{len(visible) - 1}"
        )
    return [visible[i] for i in requested]


@dataclass
class PoolJob:
    """A task in the pool: queued until a device is free, then a started job on that device."""

    fn: Callable[[], Any]
    device: str | None = None
    job: Any = None  # what `start` returned: has .state, .job_id, .paths (a submitit job)
    cancelled: bool = field(default=False)

    @property
    def job_id(self) -> str | None:
        return None if self.job is None else str(self.job.job_id)

    def state(self) -> str:
        """PENDING, RUNNING, or how the job ended: COMPLETED, FAILED (exit code N),
        KILLED (signal N), CANCELLED (never started)."""
        if self.job is None:
            return "CANCELLED" if self.cancelled else "PENDING"
        if self.job.state == RUNNING:
            return RUNNING
        process = getattr(self.job, "_process", None)  # submitit's Popen of the job's shell
        code = None if process is None else process.returncode
        if code is None or code == 0:
            return "COMPLETED"
        # A shell reports a child killed by signal N as exit code 128 + N.
        signum = -code if code < 0 else code - 128 if code > 128 else None
        return f"KILLED (signal {signum})" if signum else f"FAILED (exit code {code})"

    @property
    def log(self) -> Path | None:
        return None if self.job is None else Path(self.job.paths.stderr)


class DevicePool:
    """Runs submitted tasks on `devices`, at most one running task per device, in order.

    `start(fn, device)` launches `fn` pinned to `device` and returns a job whose `.state` is
    "RUNNING" until it ends. Call `step()` regularly: it starts queued tasks on free devices."""

    def __init__(self, devices: Sequence[str], start: Callable[[Callable[[], Any], str], Any]):
        if not devices:
            raise ValueError("a device pool needs at least one device")
        self.devices = list(devices)
        self.start = start
        self.jobs: list[PoolJob] = []

    def submit(self, fn: Callable[[], Any]) -> PoolJob:
        job = PoolJob(fn)
        self.jobs.append(job)
        return job

    def step(self) -> None:
        busy = {j.device for j in self.jobs if j.job is not None and j.state() == RUNNING}
        for j in self.jobs:
            if j.job is not None or j.cancelled:
                continue
            free = next((d for d in self.devices if d not in busy), None)
            if free is None:
                return
            j.device = free
            j.job = self.start(j.fn, free)
            busy.add(free)

    def cancel(self) -> None:
        """Drop queued tasks and stop running ones with SIGTERM (each records `interrupted`)."""
        for j in self.jobs:
            if j.job is None:
                j.cancelled = True
            elif j.state() == RUNNING:
                terminate_tree(j.job)


def terminate_tree(job: Any) -> None:
    """SIGTERM to every process of a LocalExecutor job. submitit's own cancel() sends SIGINT to
    the job's first process only, which is the shell running the setup lines, not the task."""
    import signal

    process = getattr(job, "_process", None)  # submitit keeps the Popen of the job here
    if process is None:
        return
    # Not the shell itself: while it waits for submitit's controller, the job counts as running.
    for pid in process_tree(process.pid) - {process.pid}:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile: nothing to stop
            os.kill(pid, signal.SIGTERM)


def pythonpath_setup() -> str:
    """A shell line putting this checkout first on PYTHONPATH, so a job process imports the
    same `bench` as the process that submitted it (also from a worktree or an unpacked copy)."""
    root = Path(__file__).resolve().parents[2]
    return f"export PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}}"


def local_starter(folder: Path) -> Callable[[Callable[[], Any], str], Any]:
    """`start` for DevicePool: a submitit LocalExecutor job per task, logs under `folder`."""
    import submitit

    def start(fn: Callable[[], Any], device: str) -> Any:
        executor = submitit.LocalExecutor(folder=folder / "%j")
        executor.update_parameters(
            timeout_min=NO_LIMIT_MIN,
            # The shell runs these before submitit's controller; the job inherits them.
            setup=[pythonpath_setup(), f"export CUDA_VISIBLE_DEVICES={shlex.quote(device)}"],
        )
        return executor.submit(fn)

    return start
