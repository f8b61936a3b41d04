"""NVML sampling: the loop, run either in a thread (tests, fakes) or in its own process.

The process form (`python -m bench.meter.nvml PID INTERVAL_S DEVICE_INDEX`) keeps the sampler off
the training process's GIL: it samples until a line arrives on stdin, then prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

MIB = 2**20


def process_tree(root: int) -> set[int]:
    """`root` and all its descendants (Linux /proc; DataLoader workers are children)."""
    pids, todo = {root}, [root]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in pids:
                    pids.add(k)
                    todo.append(k)
    return pids


def device_processes(nv: ModuleType, handle: Any) -> list[Any]:
    try:
        return list(nv.nvmlDeviceGetComputeRunningProcesses(handle))
    except nv.NVMLError:
        return []


def sample_loop(
    nv: ModuleType, handle: Any, root_pid: int, interval_s: float, stop: Callable[[float], bool]
) -> dict:
    """Poll until `stop(interval_s)` returns True (it waits up to interval_s). Returns peaks in MiB."""
    proc_samples: list[int] = []
    peak_dev = 0
    util: list[int] = []
    n = 0
    while True:
        pids = process_tree(root_pid) if sys.platform.startswith("linux") else {root_pid}
        used = [
            p.usedGpuMemory
            for p in device_processes(nv, handle)
            if p.pid in pids and p.usedGpuMemory
        ]
        if used:
            proc_samples.append(sum(used))
        try:
            peak_dev = max(peak_dev, nv.nvmlDeviceGetMemoryInfo(handle).used)
            util.append(int(nv.nvmlDeviceGetUtilizationRates(handle).gpu))
        except nv.NVMLError:
            pass
        n += 1
        if stop(interval_s):
            break
    ordered = sorted(proc_samples)
    return {
        "peak_process_mib": ordered[-1] / MIB if ordered else None,
        "mean_process_mib": sum(ordered) / len(ordered) / MIB if ordered else None,
        "p99_process_mib": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] / MIB
        if ordered
        else None,
        "peak_device_used_mib": peak_dev / MIB,
        "util_mean_pct": sum(util) / len(util) if util else None,
        "samples": n,
    }


def handle_for(nv: ModuleType, index: int, uuid: str | None) -> Any:
    """NVML handle of the CUDA device: by UUID when known (NVML orders by PCI bus, CUDA by speed)."""
    if uuid:
        want = uuid.replace("GPU-", "")
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            u = nv.nvmlDeviceGetUUID(h)
            u = u.decode() if isinstance(u, bytes) else u
            if u.replace("GPU-", "") == want:
                return h
    return nv.nvmlDeviceGetHandleByIndex(index)


def _main(argv: list[str]) -> int:
    import select

    import pynvml as nv

    pid, interval, index = int(argv[0]), float(argv[1]), int(argv[2])
    uuid = argv[3] if len(argv) > 3 else None
    nv.nvmlInit()
    handle = handle_for(nv, index, uuid)
    print("ready", flush=True)

    def stop(wait: float) -> bool:
        ready, _, _ = select.select([sys.stdin], [], [], wait)
        return bool(ready)

    t0 = time.perf_counter()
    out = sample_loop(nv, handle, pid, interval, stop)
    out["duration_s"] = time.perf_counter() - t0
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
