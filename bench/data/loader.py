"""Batches of each split for the training loop, from a loader set up once per run.

Two ways, chosen per run (`preload`: auto | on | off):

- **memory** (auto when every split's decoded audio takes at most `MEMORY_SHARE` of the memory
  available): every clip is decoded once, in threads, before training; batches are assembled
  from memory by one background thread, a step ahead. No worker processes exist, so nothing
  starts per epoch, and the training loop never waits on a decoder. Measured (`make
  bench-data`, 2 busy CPU cores): 320 MSP-like clips (31 min of 16 kHz WAV) decode in 0.43 s
  (mixed rates and formats: 8.3 s), then batches come at 7,270 audio-s/s, against 4,048 when
  decoding as they go; on an H100 the runs' harness efficiency (measured / fixed-batch ceiling)
  was 1.0-1.07 for every uncached strategy.
- **workers** (corpora larger than that, MSP-Podcast's 238 h at 55 GiB of float32 among them):
  one DataLoader per split with persistent workers started by fork, so they start once per run
  (~0.05 s each) rather than per epoch with the spawn method a run process inherits (~6 s).

The crop window of each clip is fixed per (seed, clip), which is what makes decoding once exact.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import torch

from bench.cache.prefetch import prefetched
from bench.data.batching import (
    WORKER_START_METHOD,
    AudioDataset,
    Batch,
    LengthGrid,
    collate,
    make_loader,
)
from bench.errors import BenchError
from bench.meter.host import available_memory
from bench.result.sections import LoaderReport

PRELOAD_CHOICES = ("auto", "on", "off")
# Decoded audio may take this share of the memory available before training starts.
MEMORY_SHARE = 0.25


class _BatchOrder(torch.utils.data.Sampler):
    """A batch sampler whose batches are set before each pass, so that one persistent loader
    serves every epoch's order."""

    def __init__(self) -> None:
        self.order: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


class SplitLoader:
    """Serves batches of one split in any order; `batches(order)` once per pass."""

    def __init__(self, ds: AudioDataset, grid: LengthGrid, num_workers: int):
        self.ds, self.grid, self.num_workers = ds, grid, num_workers
        self._order = _BatchOrder()
        self._loader: torch.utils.data.DataLoader | None = None
        self._pin = torch.cuda.is_available()

    def _assemble(self, indices: list[int]) -> Batch:
        batch = collate([self.ds[i] for i in indices], self.grid)
        return batch.pin_memory() if self._pin else batch

    def batches(self, order: list[list[int]]) -> Iterator[Batch]:
        if self.ds.waves is not None or self.num_workers == 0:
            # From memory (or decoding inline): one thread assembles the next batch meanwhile.
            return prefetched(self._assemble, order, depth=2)
        if self._loader is None:
            self._loader = make_loader(
                self.ds, self._order, self.num_workers, self.grid, persistent=True
            )
        self._order.order = order
        return iter(self._loader)


def prepare_loaders(
    data: dict[str, AudioDataset], grid: LengthGrid, num_workers: int, preload: str
) -> tuple[dict[str, SplitLoader], LoaderReport]:
    """A loader per split, decoding every split into memory first when `preload` says so."""
    if preload not in PRELOAD_CHOICES:
        raise BenchError(f"--preload must be one of {', '.join(PRELOAD_CHOICES)}, not {preload!r}")
    need = sum(ds.decoded_bytes() for ds in data.values())
    memory = available_memory()  # a container's cgroup limit where it is the tighter
    avail = memory.bytes
    fits = avail is not None and need <= MEMORY_SHARE * avail
    if preload == "on" and avail is not None and need > avail:
        raise BenchError(
            f"--preload on needs {need / 2**30:.1f} GiB for the decoded audio but only "
            f"{avail / 2**30:.1f} GiB of memory is available ({memory.source}); use --preload "
            "auto or off"
        )
    if preload == "on" or (preload == "auto" and fits):
        t0 = time.perf_counter()
        threads = min(8, os.cpu_count() or 1)
        for ds in data.values():
            ds.preload(threads)
        report = LoaderReport(
            "memory",
            0,
            None,
            need / 2**20,
            time.perf_counter() - t0,
            "--preload on"
            if preload == "on"
            else f"decoded audio ({need / 2**20:.0f} MiB) fits in {MEMORY_SHARE:.0%} of the "
            "available memory",
            memory_source=memory.source,
        )
        workers = 0
    else:
        why = "--preload off" if preload == "off" else "decoded audio would not fit in memory"
        workers = num_workers
        report = LoaderReport(
            "workers" if workers else "inline",
            workers,
            WORKER_START_METHOD if workers else None,
            None,
            None,
            f"{why}; {workers} persistent loader workers" if workers else f"{why}; no workers",
            memory_source=memory.source,
        )
    return {s: SplitLoader(ds, grid, workers) for s, ds in data.items()}, report
