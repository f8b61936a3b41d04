"""One writer per run folder: a sweep holds RUN_DIR/.serbench.lock from before its first run
until its report is written, and a second sweep on the same folder is refused with a message
naming the holder (pid, host, command, since when) instead of redoing the same runs and
deleting results the first one finished.

Same approach as the prefix cache's build lock (`bench.cache.lock`): a POSIX record lock
(fcntl.lockf), released by the kernel (or the NFS lock manager) when its holder dies, so a killed
sweep never leaves a stale lock. The lock file stays behind; while held it describes its holder
(one line of JSON), and it is emptied on release. Where the file system refuses locks the sweep
goes on unlocked and says so. A record lock belongs to the process: a second lock taken in the
same process succeeds, so this guards sweeps in different processes or on different hosts
(within one, `run_folder_lock` is reentrant).
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no POSIX locks
    fcntl = None  # type: ignore[assignment]

from bench.errors import BenchError

log = logging.getLogger(__name__)

LOCK_NAME = ".serbench.lock"
# Run folders whose lock this process holds (resolved path -> depth of nested takes).
_HELD: dict[Path, int] = {}


def check_out_dir(out_dir: Path, flag: str = "--out") -> None:
    """Refuse a run folder that cannot hold results: a file, or a folder (or the nearest
    existing parent of one to create) that this user cannot write."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BenchError(f"{flag} {out_dir} is a file, not a folder; name a folder for the run")
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        what = (
            "is read-only"
            if existing == out_dir
            else f"cannot be created ({existing} is read-only)"
        )
        raise BenchError(f"{flag} {out_dir} {what}; name a folder you can write")
    if not existing.is_dir():
        raise BenchError(f"{flag} {out_dir} cannot be created ({existing} is not a folder)")


def _holder(command: str) -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def describe_holder(lock: Path) -> str:
    """The holder recorded in `lock`, in words ('unknown' when it has not written itself yet)."""
    try:
        h = json.loads(lock.read_text() or "{}")
    except (OSError, ValueError):
        h = {}
    if not isinstance(h, dict) or "pid" not in h:
        return "holder unknown"
    return f"pid {h.get('pid')} on {h.get('host')}, since {h.get('since')}: {h.get('command')}"


@contextmanager
def run_folder_lock(out_dir: Path, command: str | None = None) -> Iterator[str]:
    """Hold the run folder's lock (creating the folder); yields the lock kind ("fcntl", or why
    there is none). Raises BenchError naming the holder when another process holds it.

    Reentrant within a process (the command holds it from its first write to its report, and
    `launch_sweep` takes it again for callers of the library): a POSIX lock is released when
    its process closes any descriptor of the file, so a nested take must not open it again."""
    out_dir = Path(out_dir)
    key = out_dir.resolve()
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield "fcntl (held by this process)"
        finally:
            _HELD[key] -= 1
        return
    check_out_dir(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"--out {out_dir} cannot be created: {exc.strerror or exc}") from None
    if fcntl is None:
        yield "none: no fcntl on this platform"
        return
    path = out_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    locked = False
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
            kind = "fcntl"
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):  # ENOLCK, EOPNOTSUPP: no locks
                log.warning("no file lock in %s (%s); running unlocked", out_dir, exc)
                kind = f"none: {exc.strerror or exc}"
            else:
                raise BenchError(
                    f"--out {out_dir} is in use by another sweep ({describe_holder(path)}); "
                    "wait for it to end, or give this sweep another --out"
                ) from None
        if locked:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_holder(command or " ".join(sys.argv))).encode(), 0)
            _HELD[key] = 1
        yield kind
    finally:
        if locked:
            _HELD.pop(key, None)
            os.ftruncate(fd, 0)  # a lock file that describes nobody once released
        os.close(fd)  # releases the lock
