"""The loader starts once per run: persistent workers with an explicit start method, or the
corpus decoded into memory; bounded input lengths."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest

from bench.data.batching import (
    FRAME_RECEPTIVE,
    FRAME_STRIDE,
    AudioDataset,
    LengthGrid,
    bucket_batches,
    distinct_lengths,
    frame_aligned,
    frames_of,
    padding_fraction,
)
from bench.data.datasets import DataConfig, load_dataset
from bench.data.durations import msp_like_durations
from bench.data.loader import prepare_loaders
from tests.conftest import TINY_SPEC


def _train_split(root: str) -> AudioDataset:
    corpus = load_dataset(DataConfig("synthetic", root, False, TINY_SPEC), 0)
    return AudioDataset(corpus.split("train"), None, 0, train=True)


def _first_batch_seconds(root: str, preload: str, out: mp.Queue) -> None:
    """In a fresh process: seconds to the first batch of epochs 1 and 2 of a 4-worker loader."""
    ds = _train_split(root)
    loaders, report = prepare_loaders(
        {"train": ds}, LengthGrid.from_lengths(ds.lengths()), 4, preload
    )
    times = []
    for epoch in range(2):
        order = bucket_batches(ds.lengths(), 4, seed=0, epoch=epoch)
        t0 = time.perf_counter()
        batches = loaders["train"].batches(order)
        next(batches)
        times.append(time.perf_counter() - t0)
        for _ in batches:
            pass
    out.put((report.mode, times))


@pytest.mark.parametrize("preload", ["off", "on"])
def test_in_a_spawned_process_epoch_two_starts_within_a_second(synth_dir, preload):
    # The trap this guards: a run process is started with spawn, so without an explicit start
    # method its loader workers are spawned too, and a non-persistent loader re-spawns them,
    # re-importing torch, every epoch (~6 s here).
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_first_batch_seconds, args=(str(synth_dir), preload, q))
    proc.start()
    mode, times = q.get(timeout=120)
    proc.join(timeout=30)
    assert mode == {"off": "workers", "on": "memory"}[preload]
    assert times[1] < 1.0, times


def test_preloaded_items_equal_decoded_ones(synth_dir):
    ds = _train_split(str(synth_dir))
    decoded = [ds[i][0] for i in range(len(ds))]
    ds.preload(threads=2)
    assert ds.waves is not None
    for i in range(len(ds)):
        np.testing.assert_array_equal(ds[i][0], decoded[i])
    assert ds.decoded_bytes() == 4 * sum(len(w) for w in decoded)


def test_preload_on_more_than_memory_holds_is_refused(synth_dir, monkeypatch):
    from bench.data import loader as loader_mod
    from bench.errors import BenchError
    from bench.meter.host import AvailableMemory

    limit = AvailableMemory(1000, "cgroup v2 /sys/fs/cgroup/memory.max (0.0 GiB limit)")
    monkeypatch.setattr(loader_mod, "available_memory", lambda: limit)
    ds = _train_split(str(synth_dir))
    with pytest.raises(BenchError, match=r"--preload on needs .*cgroup v2.* use --preload auto"):
        prepare_loaders({"train": ds}, LengthGrid(()), 0, "on")
    _, report = prepare_loaders({"train": ds}, LengthGrid(()), 2, "auto")
    assert report.mode == "workers" and "would not fit" in report.reason
    assert report.memory_source == limit.source


def test_an_epoch_of_msp_podcast_durations_has_few_lengths_and_little_padding():
    lengths = [round(s * 16_000) for s in msp_like_durations(4000)]
    grid = LengthGrid.from_lengths(lengths)
    assert len(grid.lengths) <= 32
    for epoch in range(3):
        order = bucket_batches(lengths, 16, seed=0, epoch=epoch)
        assert distinct_lengths(order, lengths, grid) <= 32
        assert padding_fraction(order, lengths, grid) <= 0.05
    # Without the grid nearly every batch is a shape of its own.
    assert distinct_lengths(order, lengths) > 200


def test_grid_lengths_end_on_frame_boundaries():
    grid = LengthGrid.from_lengths(list(range(8_000, 90_000, 37)))
    for n in grid.lengths:
        assert (n - FRAME_RECEPTIVE) % FRAME_STRIDE == 0
    assert grid.pad_to(8_000) >= 8_000 and grid.pad_to(10**6) == frame_aligned(10**6)
    for n in (400, 401, 720, 721, 80_000):
        a = frame_aligned(n)
        # The aligned length is the shortest with its frame count: one sample less loses a frame.
        assert a >= n and frames_of(a) == frames_of(a + FRAME_STRIDE - 1)
        assert frames_of(a - 1) == frames_of(a) - 1
