"""The on-disk layout of a prefix cache, written once, verified on every open.

One store is two files named by the key's digest:
  <digest>.bin   every clip's rows back to back: a flat (total_rows, dim) array, no header, so it
                 can be memory-mapped as it is;
  <digest>.json  the index: magic, format, key components, dtype, dim, and per clip its key,
                 first row, row count, sample count and CRC32 of its bytes.
The payload is renamed into place first and the index last, so an index exists only for a
complete payload. Opening checks the magic, format, key, dtype, dim, payload size and every
clip's CRC32; any mismatch raises `CacheInvalid` and the caller rebuilds.
"""

from __future__ import annotations

import json
import os
import socket
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

MAGIC = "serbench-prefix-cache"

# Stored dtypes, and the same-width integer they travel through numpy as (numpy has no bfloat16).
DTYPES: dict[str, tuple[torch.dtype, torch.dtype, type]] = {
    "float16": (torch.float16, torch.int16, np.int16),
    "bfloat16": (torch.bfloat16, torch.int16, np.int16),
    "float32": (torch.float32, torch.int32, np.int32),
}


class CacheInvalid(Exception):
    """A store file that must not be used (corrupt, truncated, stale). Handled by rebuilding."""


@dataclass(frozen=True)
class StoreIndex:
    magic: str
    format: int
    key: str
    components: dict
    dtype: str
    dim: int
    clip_keys: list[str]
    first_row: list[int]
    rows: list[int]
    samples: list[int]
    crc32: list[int]
    payload_bytes: int

    @property
    def row_bytes(self) -> int:
        return self.dim * np.dtype(DTYPES[self.dtype][2]).itemsize


def temp_path(path: Path) -> Path:
    """A private name next to `path` to write before renaming into place: unique per host and
    process, since processes on several nodes can share a cache folder (and a pid)."""
    return path.with_name(f"{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def remove_stale_temps(directory: Path, key: str, any_host: bool = False) -> list[Path]:
    """Remove the temporary files (`temp_path`) of store `key` that no live build can still be
    writing: those of processes on this host that are gone (a build killed mid-write leaves its
    whole payload behind, tens of GB for a large corpus), and, with `any_host` (only under the
    build lock, which no other builder then holds), every one. Returns what was removed."""
    host = socket.gethostname()
    removed = []
    for path in directory.glob(f"{key}.*.tmp-*"):
        writer = path.name.rpartition(".tmp-")[2]
        where, _, pid = writer.rpartition("-")
        own = where == host and pid == str(os.getpid())
        stale = any_host or (where == host and pid.isdigit() and _gone(int(pid)))
        if stale and not own:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def store_paths(directory: Path, key: str) -> tuple[Path, Path]:
    return directory / f"{key}.bin", directory / f"{key}.json"


def drop_page_cache(path: Path) -> bool:
    """Ask the kernel to forget the file's cached pages (clean ones; no root needed).
    False where posix_fadvise does not exist (macOS, Windows)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


def remove_store(directory: Path, key: str) -> None:
    for p in store_paths(directory, key):
        p.unlink(missing_ok=True)


class StoreWriter:
    """Appends clips to a new store; `commit` makes it visible atomically. Use as a context
    manager: leaving it by an exception removes the partial files."""

    def __init__(self, directory: Path, key: str, components: dict, dtype: str, dim: int):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.key, self.components = directory, key, components
        self.dtype, self.dim = dtype, dim
        self._payload, self._index = store_paths(directory, key)
        self._tmp = temp_path(self._payload)
        self._file = open(self._tmp, "wb")  # noqa: SIM115 (closed in commit/abort)
        self.clip_keys: list[str] = []
        self.first_row: list[int] = []
        self.rows: list[int] = []
        self.samples: list[int] = []
        self.crc32: list[int] = []
        self.bytes_written = 0
        self._next_row = 0
        self.write_s = 0.0  # seconds inside write/flush/fsync, for the throughput figure

    def add(self, clip_key: str, features: torch.Tensor, samples: int) -> None:
        """Append one clip's (rows, dim) features, already in the store dtype, on the CPU."""
        if features.dim() != 2 or features.shape[1] != self.dim:
            raise ValueError(f"expected (rows, {self.dim}) features, got {tuple(features.shape)}")
        float_dtype, int_dtype, _ = DTYPES[self.dtype]
        raw = features.to(float_dtype).contiguous().view(int_dtype).numpy()
        t0 = time.perf_counter()
        self._file.write(raw.data)
        self.write_s += time.perf_counter() - t0
        self.clip_keys.append(clip_key)
        self.first_row.append(self._next_row)
        self.rows.append(int(features.shape[0]))
        self._next_row += int(features.shape[0])
        self.samples.append(int(samples))
        self.crc32.append(zlib.crc32(raw.data))
        self.bytes_written += raw.nbytes

    def commit(self) -> StoreIndex:
        t0 = time.perf_counter()
        self._file.flush()
        os.fsync(self._file.fileno())  # the index must never describe bytes still in flight
        self._file.close()
        self.write_s += time.perf_counter() - t0
        index = StoreIndex(
            MAGIC,
            self.components["format"],
            self.key,
            self.components,
            self.dtype,
            self.dim,
            self.clip_keys,
            self.first_row,
            self.rows,
            self.samples,
            self.crc32,
            self.bytes_written,
        )
        os.replace(self._tmp, self._payload)
        tmp_index = temp_path(self._index)
        tmp_index.write_text(json.dumps(asdict(index)))
        os.replace(tmp_index, self._index)
        return index

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


class FeatureStore:
    """An opened, verified store: clips by position, gathered into padded batches.

    `where` is "memory" (the payload read into RAM) or "disk" (memory-mapped; pages are read
    on demand, which the trainer hides behind compute with a prefetch thread).
    """

    def __init__(self, index: StoreIndex, payload: np.ndarray, where: str, path: Path):
        self.index, self.payload, self.where, self.path = index, payload, where, path
        self.torch_dtype = DTYPES[index.dtype][0]
        self.position = {k: i for i, k in enumerate(index.clip_keys)}

    @property
    def nbytes(self) -> int:
        return self.index.payload_bytes

    def rows_of(self, clip: int) -> torch.Tensor:
        a = self.index.first_row[clip]
        raw = np.asarray(self.payload[a : a + self.index.rows[clip]])
        return torch.from_numpy(raw).view(self.torch_dtype)

    def gather(
        self, clips: list[int], pin: bool = False, min_rows: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clips (store positions) -> zero-padded (B, T, dim) features and (B, T) row mask,
        T = max(the longest clip's rows, `min_rows`)."""
        rows = [self.index.rows[c] for c in clips]
        t = max(*rows, min_rows)
        # empty + zeroing only the padding: one pass over the batch instead of two.
        hidden = torch.empty(len(clips), t, self.index.dim, dtype=self.torch_dtype, pin_memory=pin)
        mask = torch.zeros(len(clips), t, dtype=torch.bool, pin_memory=pin)
        for j, (c, n) in enumerate(zip(clips, rows, strict=True)):
            # Reading a memory-mapped slice faults its pages in here; torch's copy releases the
            # GIL, so a prefetch thread doing this overlaps with the training step.
            hidden[j, :n].copy_(self.rows_of(c))
            hidden[j, n:].zero_()
            mask[j, :n] = True
        return hidden, mask


class DeviceStore:
    """A store's features copied into one (rows + 1, dim) tensor on the training device, the
    last row zeros. A batch is one `index_select` with an index built on the host: no per-clip
    copies, no pinned staging, no host-to-device transfer of features, no reader thread
    competing with the training loop for the GIL. Used when the store is small next to the
    device's memory (bench/cache/prefix.py: resolve_place)."""

    where = "device"

    def __init__(self, store: FeatureStore, device: torch.device):
        self.index, self.path, self.position = store.index, store.path, store.position
        self.device = device
        rows = np.asarray(store.payload).reshape(-1, store.index.dim)
        table = torch.from_numpy(rows).view(store.torch_dtype)
        self.table = torch.cat([table, table.new_zeros(1, table.shape[1])]).to(device)
        self.first_row = np.asarray(store.index.first_row, dtype=np.int64)
        self.rows = np.asarray(store.index.rows, dtype=np.int64)
        self.zero_row = self.table.shape[0] - 1

    @property
    def nbytes(self) -> int:
        return self.index.payload_bytes

    def gather(
        self, clips: list[int], pin: bool = False, min_rows: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As `FeatureStore.gather`, on the device."""
        c = np.asarray(clips, dtype=np.int64)
        n = self.rows[c]
        t = max(int(n.max()), min_rows)
        steps = np.arange(t, dtype=np.int64)
        valid = steps[None, :] < n[:, None]
        idx = np.where(valid, self.first_row[c][:, None] + steps[None, :], self.zero_row)
        hidden = self.table.index_select(0, self._to_device(idx.reshape(-1)))
        return hidden.view(len(c), t, self.index.dim), self._to_device(valid)

    def _to_device(self, a: np.ndarray) -> torch.Tensor:
        """`a` on the device without stalling the host: a copy from pageable memory would wait
        for every step queued before it; a pinned one is queued behind them."""
        t = torch.from_numpy(a)
        if self.device.type != "cuda":
            return t
        return t.pin_memory().to(self.device, non_blocking=True)


def read_index(directory: Path, key: str) -> StoreIndex:
    """The index of store `key`. FileNotFoundError when absent; CacheInvalid when unusable."""
    payload_path, index_path = store_paths(directory, key)
    text = index_path.read_text()  # FileNotFoundError: no store yet
    try:
        index = StoreIndex(**json.loads(text))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise CacheInvalid(f"index {index_path.name} is unreadable ({exc})") from None
    if index.magic != MAGIC:
        raise CacheInvalid(f"index {index_path.name} is not a serbench cache index")
    if index.key != key:
        raise CacheInvalid(f"index {index_path.name} describes store {index.key}, not {key}")
    if index.dtype not in DTYPES:
        raise CacheInvalid(f"index {index_path.name} has unknown dtype {index.dtype!r}")
    n = len(index.clip_keys)
    if not (len(index.first_row) == len(index.rows) == len(index.samples) == len(index.crc32) == n):
        raise CacheInvalid(f"index {index_path.name} has lists of different lengths")
    if sum(index.rows) * index.row_bytes != index.payload_bytes:
        raise CacheInvalid(f"index {index_path.name} disagrees with itself on the payload size")
    try:
        size = payload_path.stat().st_size
    except FileNotFoundError:
        raise CacheInvalid(f"payload {payload_path.name} is missing") from None
    if size != index.payload_bytes:
        raise CacheInvalid(
            f"payload {payload_path.name} has {size} bytes, the index says {index.payload_bytes}"
        )
    return index


def _check(index: StoreIndex, clip: int, data) -> None:
    if zlib.crc32(data) != index.crc32[clip]:
        raise CacheInvalid(
            f"store {index.key}: clip {clip} ({index.clip_keys[clip][:12]}) fails its CRC32"
        )


def _verify_file(path: Path, index: StoreIndex) -> None:
    """Check every clip's CRC32 with plain reads: nothing gets mapped, so the pages can be
    dropped from the page cache afterwards (mapped pages cannot)."""
    buf = bytearray(max(index.rows, default=0) * index.row_bytes)
    with open(path, "rb", buffering=0) as f:
        for clip, n in enumerate(index.rows):
            view = memoryview(buf)[: n * index.row_bytes]
            got = 0
            while got < len(view):
                k = f.readinto(view[got:])
                if not k:
                    raise CacheInvalid(f"store {index.key}: payload ends inside clip {clip}")
                got += k
            _check(index, clip, view)


def _read_file(path: Path, nbytes: int, dtype: type) -> np.ndarray:
    """The whole file into a new array, in 64 MiB reads: np.fromfile reads a cold file ~4x
    slower on the machines we measured (make bench-cache)."""
    out = np.empty(nbytes // np.dtype(dtype).itemsize, dtype)
    view = memoryview(out).cast("B")
    got = 0
    with open(path, "rb", buffering=0) as f:
        while got < nbytes:
            k = f.readinto(view[got : got + (64 << 20)])
            if not k:
                raise CacheInvalid(f"payload {path.name} ends after {got} of {nbytes} bytes")
            got += k
    return out


def open_store(directory: Path, key: str, where: str, expected_format: int) -> FeatureStore:
    """Open and fully verify store `key` (every clip's CRC32), in memory or memory-mapped.

    FileNotFoundError when it does not exist; CacheInvalid when it exists but must not be used.
    """
    index = read_index(directory, key)
    if index.format != expected_format:
        raise CacheInvalid(
            f"store {key} has format {index.format}, this code reads {expected_format}"
        )
    payload_path = store_paths(directory, key)[0]
    int_dtype = DTYPES[index.dtype][2]
    shape = (sum(index.rows), index.dim)
    if where == "memory":
        payload = _read_file(payload_path, index.payload_bytes, int_dtype).reshape(shape)
        for clip, (a, n) in enumerate(zip(index.first_row, index.rows, strict=True)):
            _check(index, clip, payload[a : a + n].data)
    else:
        _verify_file(payload_path, index)
        # A store goes to disk because it does not fit in memory: the verification pass should
        # not push the rest of the page cache out for pages it cannot keep anyway.
        drop_page_cache(payload_path)
        if index.payload_bytes == 0:
            payload = np.zeros(shape, int_dtype)  # np.memmap refuses empty files
        else:
            # Copy-on-write mapping: reads exactly like mode "r", but the arrays are writable,
            # which torch.from_numpy wants (nothing ever assigns into them).
            payload = np.memmap(payload_path, dtype=int_dtype, mode="c", shape=shape)
    return FeatureStore(index, payload, where, payload_path)
