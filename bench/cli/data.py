"""`make bench-data`: how fast the data path is on this machine, and how much padding it leaves.

Prints
- padding fraction of length-bucketed vs random batches on MSP-Podcast-like durations;
- loader throughput in audio-seconds per second (decode + downmix + resample + normalise + crop +
  collate, through the same DataLoader the trainer uses), for a few worker counts, on a corpus
  written to a temporary folder: 16 kHz mono WAV (how MSP-Podcast and IEMOCAP ship) and a mix of
  rates, formats and channel counts (what resampling costs);
- with `--results DIR`: that figure over what full finetuning consumed in those results (the
  loader should deliver at least 10x);
- the linear acoustic baseline CCC on the `quick` profile's synthetic corpus.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.config import get_profile
from bench.data.acoustic_baseline import baseline_lines
from bench.data.adapters.base import Utterance
from bench.data.batching import (
    AudioDataset,
    LengthGrid,
    bucket_batches,
)
from bench.data.durations import MSP_RANGE_S, msp_like_durations, padding_figures
from bench.data.loader import prepare_loaders
from bench.data.synthetic import generate
from bench.errors import BenchError, run_cli
from bench.result.store import read_result

# (sample rate, container, subtype, channels): the formats of the "mixed" benchmark corpus.
MIXED_FORMATS = (
    (44_100, "FLAC", "PCM_16", 2),
    (22_050, "OGG", "VORBIS", 1),
    (8_000, "WAV", "PCM_16", 1),
    (48_000, "WAV", "PCM_16", 2),
)
SUFFIX = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg"}
WAV16K, MIXED = "16 kHz mono wav", "mixed 8-48 kHz wav/flac/ogg, mono+stereo"


def _speechlike(seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A cheap voiced-like signal (harmonics with a syllable-rate envelope, plus noise)."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(h * phase) / h for h in range(1, 12))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    return (0.1 * x + 0.003 * rng.normal(size=len(t))).astype(np.float32)


def write_corpus(
    folder: Path, durations: np.ndarray, mixed: bool, seed: int = 0
) -> list[Utterance]:
    """Audio files of the given durations in `folder`; 16 kHz mono WAV unless `mixed`."""
    rng = np.random.default_rng([seed, 22])
    utts = []
    for i, seconds in enumerate(durations):
        sr, fmt, subtype, channels = (
            MIXED_FORMATS[i % len(MIXED_FORMATS)] if mixed else (16_000, "WAV", "PCM_16", 1)
        )
        wave = _speechlike(float(seconds), sr, rng)
        data = np.stack([wave, 0.8 * wave], 1) if channels == 2 else wave
        path = folder / f"clip{i:04d}.{SUFFIX[fmt]}"
        sf.write(path, data, sr, format=fmt, subtype=subtype)
        utts.append(Utterance(str(path), (0.0,), "train", f"s{i % 10}", float(seconds)))
    return utts


@dataclass(frozen=True)
class LoaderFigures:
    corpus: str
    mode: str  # "memory" (decoded once, before training) or "N workers" (persistent, forked)
    audio_s_per_s: float  # real (unpadded) audio seconds per wall second, after the first batch
    clips_per_s: float  # likewise
    first_batch_s: float  # start-up: decoding into memory, or starting the workers (once a run)


def loader_throughput(
    utts: list[Utterance],
    corpus: str,
    workers: int | None,
    batch_size: int,
    max_seconds: float | None,
) -> LoaderFigures:
    """One epoch through the trainer's loader (`workers` None: decoded into memory first);
    steady-state rates exclude the first batch."""
    ds = AudioDataset(utts, max_seconds, seed=0, train=True)
    order = bucket_batches(ds.lengths(), batch_size, seed=0, epoch=0)
    if len(order) < 2:
        raise BenchError(f"{len(utts)} clips make one batch of {batch_size}; use more --clips")
    grid = LengthGrid.from_lengths(ds.lengths())
    t0 = time.perf_counter()
    loaders, _ = prepare_loaders(
        {"train": ds}, grid, workers or 0, "on" if workers is None else "off"
    )
    audio, clips, t_first = 0.0, 0, 0.0
    for step, batch in enumerate(loaders["train"].batches(order)):
        if step == 0:
            t_first = time.perf_counter()
            continue
        audio += batch.audio_seconds
        clips += len(batch.index)
    wall = time.perf_counter() - t_first
    mode = "memory" if workers is None else f"{workers} workers"
    return LoaderFigures(corpus, mode, audio / wall, clips / wall, t_first - t0)


def consumed_audio_s_per_s(results_dir: Path) -> float | None:
    """Mean training audio-seconds/s of the `full` runs stored under `results_dir`, if any."""
    found = []
    for p in sorted(Path(results_dir).glob("**/full__seed*.json")):
        r = read_result(p)
        thr = r.efficiency.throughput if r and r.ok and r.efficiency else None
        if thr is not None and thr.train_audio_s_per_s:
            found.append(thr.train_audio_s_per_s)
    return float(np.mean(found)) if found else None


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.cli.data", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--clips", type=int, default=320, help="clips per benchmark corpus")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-seconds", type=float, default=8.0, help="crop, as the study profile")
    ap.add_argument(
        "--workers",
        default=f"0,{min(4, os.cpu_count() or 1)}",
        help="comma list of DataLoader worker counts",
    )
    ap.add_argument(
        "--results", default=None, help="a run folder whose full__seed*.json to compare with"
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip the synthetic baseline CCC")
    args = ap.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",") if w.strip()]

    print(f"machine: {os.cpu_count()} CPU cores")
    durations = msp_like_durations(20_000)
    print(
        f"padding on MSP-Podcast-like durations (20,000 clips, mean {durations.mean():.2f} s, "
        f"{MSP_RANGE_S[0]:g}-{MSP_RANGE_S[1]:g} s), mean of 3 epochs:"
    )
    for f in padding_figures(durations, (8, 16, 32)):
        print(
            f"  batch {f.batch_size:>2}: length-bucketed {100 * f.bucketed:5.2f} % "
            f"({f.distinct} input lengths an epoch)   bucketed + bounded lengths "
            f"{100 * f.bucketed_grid:5.2f} % ({f.distinct_grid} lengths; the trainer)   "
            f"random {100 * f.random:5.2f} %"
        )

    figures: list[LoaderFigures] = []
    with tempfile.TemporaryDirectory(prefix="serbench-bench-data-") as tmp:
        for mixed, label in ((False, WAV16K), (True, MIXED)):
            folder = Path(tmp) / ("mixed" if mixed else "wav16k")
            folder.mkdir()
            utts = write_corpus(folder, msp_like_durations(args.clips, seed=1), mixed)
            print(
                f"loader, {label}: {len(utts)} clips, {sum(u.seconds for u in utts) / 60:.1f} min, "
                f"batch {args.batch_size}, crop {args.max_seconds:g} s (steady state after the "
                "first batch):"
            )
            for w in [None, *workers]:
                f = loader_throughput(utts, label, w, args.batch_size, args.max_seconds)
                figures.append(f)
                print(
                    f"  {f.mode:>10}: {f.audio_s_per_s:8.0f} audio-s/s  ({f.clips_per_s:.0f} clips/s; "
                    f"first batch after {f.first_batch_s:.2f} s)"
                )
    if args.results:
        used = consumed_audio_s_per_s(Path(args.results))
        if used is None:
            print(f"no ok full__seed*.json with train_audio_s_per_s under {args.results}")
        else:
            print(
                f"full finetuning in {args.results} consumed {used:.0f} audio-s/s; the loader gives"
            )
            for label in (WAV16K, MIXED):
                best = max(f.audio_s_per_s for f in figures if f.corpus == label)
                print(
                    f"  {label}: {best / used:.1f}x that at its best worker count (target >= 10x)"
                )
    if not args.no_baseline:
        for line in baseline_lines("quick", generate(get_profile("quick").synthetic)):
            print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
