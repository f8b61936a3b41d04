"""`make bench-cache`: how fast the prefix cache is on this machine, and whether a cached epoch
is compute-bound.

Prints
- store throughput at wav2vec2-base width (768, fp16) on MSP-Podcast-like clip lengths: write
  (including CRC32 and fsync), open + verify from a cold page cache (memory store: read into RAM;
  disk store: memory-mapped), and batch reads in training order (memory store; disk store with
  cold pages, through the same prefetching reader the trainer uses). GB = 1e9 bytes.
- the epoch time of a real cached training run (`train()` with `partial3+cache`) with the store
  in memory and on disk, split into time waiting for the next batch (read) and the rest
  (compute); the verdict is compute-bound when the read wait is under 5% of the epoch.

Cold reads are produced with posix_fadvise(DONTNEED), which evicts a file's clean pages without
root; where it is unavailable the "cold" figures are page-cache reads and say so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.cache.key import FORMAT_VERSION
from bench.cache.prefetch import prefetched
from bench.cache.store import StoreWriter, drop_page_cache, open_store
from bench.config import PROFILES, DataConfig, RunConfig
from bench.data.datasets import load_dataset
from bench.errors import run_cli
from bench.train.setup import setup_run
from bench.train.trainer import train

# MSP-Podcast segments are 2.75-11 s, roughly lognormal around 5.3 s (as in bench_data.py).
MSP_MEDIAN_S, MSP_SIGMA, MSP_RANGE_S = 5.3, 0.3, (2.75, 11.0)
FRAMES_PER_S = 50  # wav2vec2's CNN: one frame per 20 ms
COMPUTE_BOUND_WAIT_SHARE = 0.05

# Where a cached epoch reads its batches from: one gather kernel on the training device (a GPU's
# memory; on a CPU the same code on host memory), per-clip copies from RAM, or a memory-mapped file.
PLACES = ("device", "memory", "disk")


def _gb(nbytes: float, seconds: float) -> float:
    return nbytes / seconds / 1e9 if seconds > 0 else float("inf")


def store_throughput(directory: Path, gib: float, dim: int, batch_size: int, seed: int) -> dict:
    """Write a synthetic store of about `gib` GiB, then time opening and reading it."""
    rng = np.random.default_rng(seed)
    row_bytes = dim * 2
    target = int(gib * 2**30)
    seconds = np.clip(
        rng.lognormal(np.log(MSP_MEDIAN_S), MSP_SIGMA, target // (row_bytes * 100) + 1),
        *MSP_RANGE_S,
    )
    rows = np.round(seconds * FRAMES_PER_S).astype(int)
    rows = rows[: int(np.searchsorted(np.cumsum(rows) * row_bytes, target)) + 1]
    pool = torch.randn(int(rows.max()) + 1024, dim, generator=torch.Generator().manual_seed(seed))
    pool = pool.to(torch.float16)

    t0 = time.perf_counter()
    with StoreWriter(directory, "bench", {"format": FORMAT_VERSION}, "float16", dim) as writer:
        for i, r in enumerate(rows):
            start = int(rng.integers(0, 1024))  # different bytes per clip, no allocation
            writer.add(f"clip{i}", pool[start : start + r], int(r) * 320)
        writer.commit()
    add_s = time.perf_counter() - t0
    nbytes = writer.bytes_written
    payload = directory / "bench.bin"
    cold = drop_page_cache(payload)

    t0 = time.perf_counter()
    mem = open_store(directory, "bench", "memory", FORMAT_VERSION)
    open_mem_s = time.perf_counter() - t0
    drop_page_cache(payload)
    t0 = time.perf_counter()
    disk = open_store(directory, "bench", "disk", FORMAT_VERSION)  # verifies, then drops pages
    open_disk_s = time.perf_counter() - t0

    # Training order: clips of similar length batched together, batches shuffled.
    order = np.argsort(rows + rng.uniform(-0.5, 0.5, len(rows)) * rows * 0.04)
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    batches = [batches[i] for i in rng.permutation(len(batches))]

    def read_all(store, prefetch: int) -> float:
        t = time.perf_counter()
        for _ in prefetched(store.gather, batches, prefetch):
            pass
        return time.perf_counter() - t

    read_mem_s = read_all(mem, 0)
    drop_page_cache(payload)
    read_disk_cold_s = read_all(disk, 4)
    read_disk_warm_s = read_all(disk, 4)
    del mem, disk
    return {
        "store_gib": nbytes / 2**30,
        "clips": len(rows),
        "dim": dim,
        "batch_size": batch_size,
        "cold_reads": cold,
        "write_gbps": _gb(nbytes, writer.write_s),
        "write_with_crc_gbps": _gb(nbytes, add_s),
        "open_verify_memory_gbps": _gb(nbytes, open_mem_s),
        "open_verify_disk_gbps": _gb(nbytes, open_disk_s),
        "read_memory_gbps": _gb(nbytes, read_mem_s),
        "read_disk_cold_gbps": _gb(nbytes, read_disk_cold_s),
        "read_disk_warm_gbps": _gb(nbytes, read_disk_warm_s),
        "batch_mib": nbytes / len(batches) / 2**20,
        "read_disk_cold_ms_per_batch": read_disk_cold_s / len(batches) * 1e3,
    }


def cached_epochs(model_name: str, epochs: int, cache_dir: Path) -> dict:
    """A real cached run per store place: epoch time, read wait and compute per epoch."""
    profile = PROFILES["quick"]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    base = RunConfig(
        "quick",
        "partial3+cache",
        0,
        model_name,
        "random",
        device,
        dataclasses.replace(profile.train, max_epochs=epochs, lr=5e-5),
        DataConfig("synthetic", None, False, profile.synthetic),
    )
    corpus = load_dataset(base.data, base.seed)
    out: dict = {"model": model_name, "ran_on": device, "strategy": base.strategy}
    os.environ["SERBENCH_PREFIX_CACHE"] = str(cache_dir)
    for place in PLACES:
        res = train(setup_run(base.with_train(cache_store=place), corpus))
        assert res.cache is not None and res.cache.where == place
        out[place] = {
            "cache_built_here": not res.cache.reused,
            "cache_ready_s": res.cache.ready_s,
            "cache_mib": res.cache.mib,
            "epochs": [
                {
                    "epoch_s": h.epoch_time_s,
                    "read_wait_s": h.data_wait_s,
                    "compute_s": h.epoch_time_s - h.data_wait_s,
                    "read_wait_share": h.data_wait_s / h.epoch_time_s,
                }
                for h in res.history
            ],
        }
    return out


def report(store: dict, epochs: dict) -> str:
    cold = "" if store["cold_reads"] else " (page cache: posix_fadvise unavailable)"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"machine: {os.cpu_count()} CPUs, load average {load:.1f} while measuring "
        "(figures from a busy machine are low)",
        f"store: {store['store_gib']:.2f} GiB, {store['clips']} clips, dim {store['dim']} fp16, "
        f"batches of {store['batch_size']} ({store['batch_mib']:.1f} MiB each)",
        f"  write (incl. fsync)          {store['write_gbps']:7.2f} GB/s",
        f"  write incl. CRC32            {store['write_with_crc_gbps']:7.2f} GB/s",
        f"  open+verify, memory (cold)   {store['open_verify_memory_gbps']:7.2f} GB/s{cold}",
        f"  open+verify, disk (cold)     {store['open_verify_disk_gbps']:7.2f} GB/s{cold}",
        f"  batch reads, memory          {store['read_memory_gbps']:7.2f} GB/s",
        f"  batch reads, disk cold       {store['read_disk_cold_gbps']:7.2f} GB/s{cold}"
        f"  ({store['read_disk_cold_ms_per_batch']:.1f} ms per batch)",
        f"  batch reads, disk warm       {store['read_disk_warm_gbps']:7.2f} GB/s",
        f"cached epochs: {epochs['strategy']} on {epochs['model']} ({epochs['ran_on']}), "
        "quick-profile synthetic corpus",
        *(
            [
                "  (on a CPU the device store gathers in the training loop, with no reader thread to "
                "hide it; on a GPU its gather is one asynchronous kernel)"
            ]
            if epochs["ran_on"] != "cuda"
            else []
        ),
        f"  {'store':<7}{'epoch':>6}{'epoch s':>10}{'read wait s':>13}{'compute s':>11}{'wait %':>8}",
    ]
    verdicts = []
    for place in PLACES:
        for i, e in enumerate(epochs[place]["epochs"]):
            lines.append(
                f"  {place:<7}{i:>6}{e['epoch_s']:>10.2f}{e['read_wait_s']:>13.3f}"
                f"{e['compute_s']:>11.2f}{100 * e['read_wait_share']:>7.1f}%"
            )
            verdicts.append(e["read_wait_share"] < COMPUTE_BOUND_WAIT_SHARE)
    lines.append(
        "verdict: compute-bound (read wait < 5% of every epoch)"
        if all(verdicts)
        else "verdict: NOT compute-bound in some epoch (read wait >= 5%): the disk is too slow"
    )
    return "\n".join(lines)


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cli.cache", description=__doc__)
    ap.add_argument("--gib", type=float, default=1.0, help="size of the throughput store (GiB)")
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the cached run per store")
    ap.add_argument(
        "--model",
        default=None,
        help="model of the cached run (default: wav2vec2-base with CUDA, small-w2v2 without)",
    )
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    model = args.model or ("facebook/wav2vec2-base" if torch.cuda.is_available() else "small-w2v2")
    root = Path(tempfile.mkdtemp(prefix="bench-cache-", dir=args.dir))
    try:
        store = store_throughput(root / "store", args.gib, 768, args.batch_size, seed=0)
        shutil.rmtree(root / "store")
        epochs = cached_epochs(model, args.epochs, root / "prefix-cache")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(report(store, epochs))
    if args.json:
        Path(args.json).write_text(json.dumps({"store": store, "epochs": epochs}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
