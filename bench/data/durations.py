"""Clip durations like MSP-Podcast's, and the padding length-bucketed batches leave on them:
the plan projects from them and `make bench-data` reports them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.batching import (
    LengthGrid,
    bucket_batches,
    distinct_lengths,
    padding_fraction,
    random_batches,
)

# MSP-Podcast segments are cut to 2.75-11 s; their durations are roughly lognormal around 5 s.
MSP_MEDIAN_S, MSP_SIGMA, MSP_RANGE_S = 5.3, 0.3, (2.75, 11.0)


def msp_like_durations(n: int, seed: int = 0) -> np.ndarray:
    """`n` clip durations in seconds, distributed like MSP-Podcast's (mean ~5.5 s, 2.75-11 s)."""
    rng = np.random.default_rng([seed, 21])
    return np.clip(rng.lognormal(np.log(MSP_MEDIAN_S), MSP_SIGMA, n), *MSP_RANGE_S)


@dataclass(frozen=True)
class PaddingFigures:
    batch_size: int
    bucketed: float  # padding fraction, 0..1, mean over epochs: each batch to its longest clip
    bucketed_grid: float  # the same batches padded up to the run's bounded lengths (the trainer)
    random: float
    distinct: int  # distinct input lengths in one epoch (most over epochs), own-longest padding
    distinct_grid: int  # likewise, bounded lengths


def padding_figures(
    durations: np.ndarray, batch_sizes: tuple[int, ...], epochs: int = 3
) -> list[PaddingFigures]:
    lengths = [round(s * 16_000) for s in durations]
    grid = LengthGrid.from_lengths(lengths)
    out = []
    for bs in batch_sizes:
        orders = [bucket_batches(lengths, bs, 0, e) for e in range(epochs)]
        r = [
            padding_fraction(random_batches(len(lengths), bs, 0, e), lengths) for e in range(epochs)
        ]
        out.append(
            PaddingFigures(
                bs,
                float(np.mean([padding_fraction(o, lengths) for o in orders])),
                float(np.mean([padding_fraction(o, lengths, grid) for o in orders])),
                float(np.mean(r)),
                max(distinct_lengths(o, lengths) for o in orders),
                max(distinct_lengths(o, lengths, grid) for o in orders),
            )
        )
    return out
