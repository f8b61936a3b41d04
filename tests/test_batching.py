"""Length-bucketed batches: little padding, a pure function of (seed, epoch), real shuffling."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from bench.data.adapters.base import Utterance
from bench.data.batching import (
    AudioDataset,
    bucket_batches,
    collate,
    make_loader,
    padding_fraction,
    random_batches,
)
from bench.data.durations import msp_like_durations, padding_figures
from bench.result import Efficiency, RunResult, ThroughputReport
from bench.result.store import write_result


def _lengths(n: int, seed: int = 0) -> list[int]:
    return [round(s * 16_000) for s in msp_like_durations(n, seed)]


@pytest.mark.parametrize("batch_size", [8, 16, 32])
def test_bucketing_pads_at_most_5_percent_on_msp_like_durations(batch_size):
    lengths = _lengths(5_000)
    for epoch in range(3):
        batches = bucket_batches(lengths, batch_size, seed=0, epoch=epoch)
        assert padding_fraction(batches, lengths) <= 0.05
    # The reference: random batches of the same durations waste far more.
    random = padding_fraction(random_batches(len(lengths), batch_size, 0, 0), lengths)
    assert random > 0.25


def test_padding_figures_compare_bucketed_with_random():
    (fig,) = padding_figures(msp_like_durations(2_000), (16,), epochs=2)
    assert fig.bucketed <= 0.05 < 0.25 < fig.random


def test_padding_fraction_by_hand():
    assert padding_fraction([[0, 1]], [3, 1]) == pytest.approx(2 / 6)
    assert padding_fraction([[0], [1]], [3, 1]) == 0.0


def test_batch_order_is_a_pure_function_of_seed_and_epoch():
    lengths = _lengths(500)
    a = bucket_batches(lengths, 16, seed=1, epoch=0)
    assert a == bucket_batches(lengths, 16, seed=1, epoch=0)
    assert a != bucket_batches(lengths, 16, seed=2, epoch=0)
    assert a != bucket_batches(lengths, 16, seed=1, epoch=1)
    assert sorted(i for b in a for i in b) == list(range(len(lengths)))
    assert sum(len(b) < 16 for b in a) <= 1  # only the remainder batch is short


def test_batch_mates_change_between_epochs():
    """Jitter, not a fixed sort: most batches differ from one epoch to the next."""
    lengths = _lengths(2_000)
    e0 = {frozenset(b) for b in bucket_batches(lengths, 16, seed=0, epoch=0)}
    e1 = {frozenset(b) for b in bucket_batches(lengths, 16, seed=0, epoch=1)}
    assert len(e0 & e1) < 0.2 * len(e0)


def test_evaluation_batches_are_sorted_and_deterministic():
    lengths = _lengths(100)
    batches = bucket_batches(lengths, 8, seed=0, epoch=0, shuffle=False)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)
    assert batches == bucket_batches(lengths, 8, seed=5, epoch=3, shuffle=False)


def test_collate_pads_with_zeros_and_masks_real_samples():
    items = [(np.ones(5, np.float32), (0.5,), 3), (np.ones(3, np.float32), (-0.5,), 7)]
    b = collate(items)
    assert b.inputs.shape == (2, 5) and b.attention_mask.dtype == torch.long
    assert b.attention_mask.sum(1).tolist() == [5, 3]
    assert b.inputs[1, 3:].abs().sum() == 0
    assert b.targets.tolist() == [[0.5], [-0.5]] and b.index.tolist() == [3, 7]
    assert b.audio_seconds == pytest.approx(8 / 16_000)


@pytest.fixture
def clips(tmp_path):
    rng = np.random.default_rng(0)
    utts = []
    for i, seconds in enumerate([0.5, 0.8, 1.2, 0.6, 1.0, 0.7]):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, rng.normal(0, 0.1, int(seconds * 16_000)).astype(np.float32), 16_000)
        utts.append(Utterance(str(path), (0.1 * i,), "train", "s", seconds))
    return utts


def test_crop_windows_are_seeded_in_training_and_centred_in_evaluation(clips):
    a = AudioDataset(clips, 0.5, seed=0, train=True)
    assert np.array_equal(a.offsets, AudioDataset(clips, 0.5, seed=0, train=True).offsets)
    assert not np.array_equal(a.offsets, AudioDataset(clips, 0.5, seed=1, train=True).offsets)
    assert set(AudioDataset(clips, 0.5, seed=0, train=False).offsets) == {0.5}
    assert max(a.lengths()) == 8_000 and all(len(a[i][0]) <= 8_000 for i in range(len(a)))


def test_loader_with_workers_delivers_what_the_main_process_does(clips):
    ds = AudioDataset(clips, 0.9, seed=0, train=True)
    order = bucket_batches(ds.lengths(), 2, seed=0, epoch=0)
    inline = list(make_loader(ds, order, 0))
    workers = list(make_loader(ds, order, 2))
    for x, y in zip(inline, workers, strict=True):
        assert torch.equal(x.inputs, y.inputs) and torch.equal(x.index, y.index)
        assert torch.equal(x.attention_mask, y.attention_mask)


def test_bench_data_prints_padding_throughput_and_the_ratio_to_training(tmp_path, capsys):
    """`make bench-data`, shrunk: figures come out, and --results compares with a full run."""
    from bench.cli.data import main

    results = tmp_path / "run" / "results"
    results.mkdir(parents=True)
    full = RunResult(
        strategy="full",
        seed=0,
        status="ok",
        efficiency=Efficiency(throughput=ThroughputReport(train_audio_s_per_s=10.0)),
    )
    write_result(results / "full__seed0.json", full)
    args = ["--clips", "6", "--batch-size", "2", "--workers", "0", "--no-baseline"]
    args += ["--results", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "length-bucketed" in out and "random" in out
    rates = {
        line.split(":")[0].strip(): float(line.split(":")[1].split()[0])
        for line in out.splitlines()
        if "audio-s/s  (" in line
    }
    # Each corpus through the loader decoded into memory and with 0 workers.
    assert set(rates) == {"memory", "0 workers"} and all(r > 0 for r in rates.values())
    assert out.count("audio-s/s  (") == 4
    assert "consumed 10 audio-s/s" in out and "x that at its best worker count" in out
