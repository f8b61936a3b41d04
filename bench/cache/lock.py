"""One builder per store: runs that need the same missing store (seeds of a sweep running at
once, array tasks on several nodes sharing a cache folder) build it once; the others wait for
the lock and then open what the builder committed.

The lock is a POSIX record lock (fcntl.lockf) on `<key>.lock` next to the store: it works on local
disks and on NFS with locking, and the kernel (or NFS lock manager) releases it when its holder
dies, so a killed build never leaves a stale lock. Lock files stay behind (empty): deleting one
while another process waits on it would let a third take a fresh lock on a new file alongside.
Where the file system refuses locks, building goes on unlocked, as before (the store's
write-to-temp + rename still keeps every reader safe), and the outcome says so.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

try:
    import fcntl
except ImportError:  # Windows: no POSIX locks
    fcntl = None  # type: ignore[assignment]

from bench.cache.store import CacheInvalid, remove_stale_temps, remove_store, store_paths

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class BuildOutcome:
    """How a store was obtained: built here or opened, seconds spent waiting for another
    process's build, why an existing store was discarded, and the lock used."""

    built: bool
    waited_s: float
    rebuilt_because: str | None
    lock: str  # "fcntl", or why there was none


@contextmanager
def build_lock(directory: Path, key: str) -> Iterator[tuple[float, str]]:
    """Hold the exclusive build lock of store `key`; yields (seconds waited, lock kind)."""
    directory.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield 0.0, "none: no fcntl on this platform"
        return
    fd = os.open(directory / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    t0 = time.perf_counter()
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            kind = "fcntl"
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):  # held by another builder: wait
                log.info("prefix cache %s: waiting for another process that builds it", key)
                fcntl.lockf(fd, fcntl.LOCK_EX)
                kind = "fcntl"
            else:  # ENOLCK, EOPNOTSUPP...: this file system has no locks
                log.warning(
                    "prefix cache %s: no file lock in %s (%s); building unlocked",
                    key,
                    directory,
                    exc,
                )
                kind = f"none: {exc.strerror or exc}"
        yield time.perf_counter() - t0, kind
    finally:
        os.close(fd)  # releases the lock


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Identity of a committed index file: a new commit is a new inode (rename), so this changes."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def open_or_build(
    directory: Path, key: str, open_store: Callable[[], T], build: Callable[[], None]
) -> tuple[T, BuildOutcome]:
    """The store `key`, opened by `open_store` (which raises FileNotFoundError when it is absent,
    CacheInvalid when it is unusable); when there is none, `build` writes and commits it.

    Building happens under the build lock, and only if the store is still the one found missing
    or unusable: a process that waited while another built opens that store instead. An unusable
    store is removed only under the lock, so no process deletes one another has just committed.
    Opening (which verifies every checksum) happens outside the lock, in parallel."""
    index = store_paths(directory, key)[1]
    if directory.is_dir():
        remove_stale_temps(directory, key)  # what builds killed on this host left behind
    waited, kind, rebuilt_because, built = 0.0, "not needed", None, False
    for _ in range(3):
        seen = _stamp(index)
        try:
            return open_store(), BuildOutcome(built, waited, rebuilt_because, kind)
        except FileNotFoundError:
            failure = None
        except CacheInvalid as exc:
            if built:
                raise  # the store built here a moment ago fails its checks: a bug or a bad disk
            failure = str(exc)
        with build_lock(directory, key) as (waited_s, kind):
            waited += waited_s
            if _stamp(index) != seen:
                continue  # another process committed a store meanwhile: open that one
            if kind == "fcntl":  # no other builder of this store is alive, on any host
                remove_stale_temps(directory, key, any_host=True)
            if failure is not None:
                log.warning("prefix cache %s is unusable (%s); rebuilding it", key, failure)
                remove_store(directory, key)
                rebuilt_because = failure
            build()
            built = True
    raise CacheInvalid(f"store {key} kept changing while it was being opened")
