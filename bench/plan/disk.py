"""Write and verify rates of the prefix-cache folder, from one small probe file.

A cache build writes the store once and every run's open reads it back with a CRC32 per clip, so
both rates price a store: measured here on a `PROBE_MIB` file in the cache's own folder, with the
page cache dropped before the read where the system allows it (else the read is from memory, and
the result says so).
"""

from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from bench.cache.store import drop_page_cache

PROBE_MIB = 64


@dataclass(frozen=True)
class DiskRates:
    directory: str
    write_gbps: float  # 1e9 bytes/s, fsync included
    verify_gbps: float  # read back + CRC32
    method: str


def probe_disk(directory: Path, mib: int = PROBE_MIB) -> DiskRates:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".plan-probe-{os.getpid()}.bin"
    payload = os.urandom(mib * 2**20)
    try:
        t0 = time.perf_counter()
        with open(path, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        write_s = time.perf_counter() - t0
        dropped = drop_page_cache(path)
        t0 = time.perf_counter()
        crc, chunk = 0, 16 * 2**20
        with open(path, "rb") as f:
            while block := f.read(chunk):
                crc = zlib.crc32(block, crc)
        read_s = time.perf_counter() - t0
    finally:
        path.unlink(missing_ok=True)
    method = f"{mib} MiB probe file in {directory}: write + fsync, then read + CRC32"
    if not dropped:
        method += " (page cache not dropped: the read may come from memory)"
    return DiskRates(
        str(directory), len(payload) / write_s / 1e9, len(payload) / read_s / 1e9, method
    )
