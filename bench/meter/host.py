"""Host-side figures."""

from __future__ import annotations

import platform
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

# cgroup v1 writes "no limit" as a huge page-aligned number (2^63 rounded down to a page).
_UNLIMITED = 2**60


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def cpu_time_s() -> float:
    """User + system CPU seconds of this process and its finished children (DataLoader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass(frozen=True)
class AvailableMemory:
    """Host memory this process may still use, bytes (None: unknown), and where the figure
    comes from: the tighter of /proc/meminfo's MemAvailable and the cgroup's limit less its
    usage (a container's limit, which MemAvailable, the whole machine's, does not see)."""

    bytes: int | None
    source: str


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (v2, no limit) and junk: None


def _inactive_file(stat: Path, key: str) -> int:
    """Page cache the kernel reclaims before it OOM-kills (counted in usage; 0 if unknown)."""
    try:
        for line in stat.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _cgroup_dirs(root: Path, base: Path, rel: str) -> list[Path]:
    """The process's cgroup folder under `base` and its ancestors up to `base`: any level's
    limit binds. Where the path is not mounted (a container sees its own cgroup at the mount's
    root), the mount's root alone."""
    rel_path = Path(rel.lstrip("/"))
    here = base / rel_path
    if not here.is_dir():
        return [base]
    dirs = [here]
    while here != base:
        here = here.parent
        dirs.append(here)
    return dirs


def cgroup_available(root: Path = Path("/")) -> tuple[int, str] | None:
    """(limit - usage + inactive page cache, description) of the tightest cgroup memory limit
    on this process: v2 `memory.max`/`memory.current`, else v1 `memory.limit_in_bytes`/
    `memory.usage_in_bytes`; None where no limit is set or cgroups are not readable."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    best: tuple[int, str] | None = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":  # v2 unified hierarchy: "0::/path"
            base, files = root / "sys/fs/cgroup", ("memory.max", "memory.current", "inactive_file")
            version = "v2"
        elif "memory" in controllers.split(","):
            base = root / "sys/fs/cgroup/memory"
            files = ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")
            version = "v1"
        else:
            continue
        for d in _cgroup_dirs(root, base, rel):
            limit = _read_int(d / files[0])
            if limit is None or limit >= _UNLIMITED:
                continue
            usage = _read_int(d / files[1]) or 0
            free = max(0, limit - usage + _inactive_file(d / "memory.stat", files[2]))
            if best is None or free < best[0]:
                where = d.relative_to(root)
                best = (
                    free,
                    f"cgroup {version} /{where}/{files[0]} ({limit / 2**30:.1f} GiB limit)",
                )
    return best


def available_memory(root: Path = Path("/")) -> AvailableMemory:
    """What memory decisions (preloading audio, a prefix store in RAM) are sized against."""
    meminfo: int | None = None
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                meminfo = int(line.split()[1]) * 1024
    except OSError:
        pass
    cgroup = cgroup_available(root)
    if cgroup is not None and (meminfo is None or cgroup[0] < meminfo):
        return AvailableMemory(cgroup[0], cgroup[1] + ", less its usage")
    if meminfo is not None:
        tail = "; the cgroup's limit is looser" if cgroup is not None else ""
        return AvailableMemory(meminfo, f"/proc/meminfo MemAvailable{tail}")
    return AvailableMemory(None, "unknown: neither /proc/meminfo nor a cgroup limit is readable")


def available_memory_bytes() -> int | None:
    """`available_memory().bytes`."""
    return available_memory().bytes


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.is_file() else []
    for line in lines:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
