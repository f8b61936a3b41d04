"""From calibration timings and the corpus' lengths to the figures a plan promises.

Every figure is a `Figure`: a value (None when it cannot be projected here), its unit, a +-error
bound (None when there is no basis for one) and how it was obtained, in words. The arithmetic
follows the trainer: each epoch's batches are the seeded `bucket_batches` of the training split,
padded up to the run's `LengthGrid`; validation runs after each epoch over the sorted val split;
test runs once; a cached strategy builds its store over every distinct clip of every split first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

from bench.cache.prefix import STORE_DTYPES
from bench.cache.store import DTYPES
from bench.config import TrainConfig
from bench.data.batching import LengthGrid, bucket_batches, frames_of
from bench.plan.calibrate import Calibration
from bench.plan.corpus import PlanCorpus
from bench.plan.disk import DiskRates
from bench.plan.fit import LengthFit


@dataclass(frozen=True)
class Figure:
    value: float | None
    unit: str
    error: float | None  # +- in `unit`
    method: str  # how it was obtained, or why it is None

    def to_dict(self) -> dict:
        return asdict(self)


def _none(unit: str, why: str) -> Figure:
    return Figure(None, unit, None, why)


def _sum(figures: list[Figure], unit: str, method: str) -> Figure:
    """Several figures added; their bounds add too (the errors are assumed to be correlated)."""
    if any(f.value is None for f in figures):
        missing = next(f for f in figures if f.value is None)
        return _none(unit, f"cannot be projected: {missing.method}")
    # Parts without a bound (setup, first visits, disk I/O) add nothing to it: the method says so.
    errors = [f.error for f in figures if f.error is not None]
    return Figure(sum(f.value for f in figures), unit, sum(errors) if errors else None, method)


def padded_counts(
    batches: list[list[int]], lengths: tuple[int, ...], grid: LengthGrid
) -> Counter[int]:
    """How many batches are padded to each input length."""
    return Counter(grid.pad_to(max(lengths[i] for i in b)) for b in batches)


def _seconds(fit: LengthFit, counts: Counter[int]) -> tuple[float, float | None]:
    total = sum(fit.seconds(n) * k for n, k in counts.items())
    return total, None if fit.rel_error is None else total * fit.rel_error


def _fit_figure(fit: LengthFit | None, counts: Counter[int], what: str, why_none: str) -> Figure:
    if fit is None:
        return _none("s", why_none)
    value, error = _seconds(fit, counts)
    return Figure(
        value,
        "s",
        error,
        f"{sum(counts.values())} {what} over {len(counts)} padded length(s); {fit.describe()}",
    )


@dataclass(frozen=True)
class StrategyPlan:
    strategy: str
    precision: str
    steps_per_epoch: int
    epoch_s: Figure  # training only, like results' epoch_time_s
    val_s: Figure  # one validation pass
    test_s: Figure
    first_visits_s: Figure  # once per run: each padded length's first step
    setup_s: Figure
    cache_build_s: Figure | None  # None: not a cached strategy
    store: Figure | None  # GiB
    store_place: str | None
    peak_memory: Figure  # MiB
    fits: bool | None
    max_batch: int | None
    energy_per_epoch: Figure  # J
    run_s: Figure  # one run with a fresh cache build
    total_s: Figure  # every seed, caches shared as the sweep shares them
    cache_builds: int

    def to_dict(self) -> dict:
        d = asdict(self)
        return d


def store_bytes(cal: Calibration, corpus: PlanCorpus) -> int:
    """Bytes of the prefix store over every clip of every split (the store holds each once)."""
    itemsize = np.dtype(DTYPES[STORE_DTYPES[cal.store_dtype]][2]).itemsize
    rows = sum(
        cal.pooled_rows if cal.pooled_rows is not None else frames_of(n)
        for n in corpus.all_lengths()
    )
    return rows * cal.hidden_size * itemsize


def project(
    cal: Calibration,
    corpus: PlanCorpus,
    cfg: TrainConfig,
    seeds: list[int],
    grid: LengthGrid,
    disk: DiskRates | None,
    builds_by_seed: dict[int, bool],
    place: str | None,
) -> StrategyPlan:
    """The plan of one strategy over `seeds`; `builds_by_seed[s]`: this strategy's run at seed
    s builds the cache (False: an earlier run in the sweep built the same store)."""
    train, val, test = (corpus.lengths[s] for s in ("train", "val", "test"))
    bs = cfg.batch_size
    # Epoch cost is averaged over the first seed's epochs (at most 3: the jitter moves a few
    # clips between buckets; more epochs change the mean by well under a percent).
    epochs = [
        padded_counts(bucket_batches(list(train), bs, seeds[0], e), train, grid)
        for e in range(min(3, cfg.max_epochs))
    ]
    steps = sum(epochs[0].values())
    why_train = (
        f"the batch of {bs} at the longest bucket did not fit in memory: {cal.memory.method}"
    )
    epoch_figs = [_fit_figure(cal.train, c, "training steps", why_train) for c in epochs]
    epoch_s = (
        epoch_figs[0]
        if epoch_figs[0].value is None
        else Figure(
            float(np.mean([f.value for f in epoch_figs])),
            "s",
            None if epoch_figs[0].error is None else float(np.mean([f.error for f in epoch_figs])),
            f"train_step on fixed batches (no loader): {epoch_figs[0].method}; the one short "
            "batch counted as full",
        )
    )
    eval_order = lambda ls: bucket_batches(list(ls), bs, 0, 0, shuffle=False)  # noqa: E731
    val_s = _fit_figure(
        cal.eval, padded_counts(eval_order(val), val, grid), "eval batches", why_train
    )
    test_s = _fit_figure(
        cal.eval, padded_counts(eval_order(test), test, grid), "eval batches", why_train
    )
    distinct = len(set().union(*epochs))
    first_visits = (
        _none("s", "no training step timed")
        if cal.first_visit_s is None
        else Figure(
            distinct * cal.first_visit_s,
            "s",
            None,
            f"{distinct} padded lengths x {cal.first_visit_s * 1000:.0f} ms (median extra cost "
            "of a step's first visit to a length in calibration); no bound",
        )
    )
    setup_s = Figure(
        cal.build_s,
        "s",
        None,
        "building the model, as timed in calibration; the process start, imports and the "
        "audio decode before training are not included",
    )
    cache_build = store = None
    if cal.store_dtype is not None:
        nbytes = store_bytes(cal, corpus)
        store = Figure(
            nbytes / 2**30,
            "GiB",
            0.0,
            f"exact: frames of every clip (all splits) x {cal.hidden_size} x "
            f"{cal.store_dtype}"
            + (f" ({cal.pooled_rows} pooled rows per clip)" if cal.pooled_rows else ""),
        )
        lengths = sorted(corpus.all_lengths())
        build_counts = Counter(
            grid.pad_to(lengths[min(i + bs, len(lengths)) - 1]) for i in range(0, len(lengths), bs)
        )
        compute = _fit_figure(cal.prefix, build_counts, "prefix batches", "not a cached strategy")
        if disk is None:
            io = _none("s", "the cache folder's rates were not measured")
        else:
            io = Figure(
                nbytes / 1e9 / disk.write_gbps + nbytes / 1e9 / disk.verify_gbps,
                "s",
                None,
                f"store size at {disk.write_gbps:.2f} GB/s write, {disk.verify_gbps:.2f} GB/s "
                f"verify ({disk.method}); no bound",
            )
        cache_build = _sum(
            [compute, io],
            "s",
            f"frozen prefix over every clip (eval mode): {compute.method}; plus writing and "
            f"verifying the store: {io.method}",
        )
    peak = Figure(
        cal.memory.peak_mib,
        "MiB",
        None,
        cal.memory.method,
    )
    if cal.power_w is None or epoch_s.value is None:
        energy = _none("J", cal.power_note)
    else:
        energy = Figure(
            cal.power_w * epoch_s.value,
            "J",
            None if epoch_s.error is None else cal.power_w * epoch_s.error,
            f"{cal.power_w:.0f} W ({cal.power_note}) x projected epoch time",
        )
    n_epochs = cfg.max_epochs
    per_epoch = _sum([epoch_s, val_s], "s", "")
    trained = (
        per_epoch
        if per_epoch.value is None
        else Figure(
            per_epoch.value * n_epochs,
            "s",
            None if per_epoch.error is None else per_epoch.error * n_epochs,
            "",
        )
    )
    base = [trained, test_s, first_visits, setup_s]
    stop = (
        f"; early stopping (patience {cfg.patience}) can end it sooner: an upper bound"
        if cfg.patience
        else ""
    )
    how = (
        f"setup + {n_epochs} x (epoch + validation) + test + first visits{stop}; the bound "
        "covers the fitted compute (steps, evaluation, prefix), not setup, first visits or disk"
    )
    with_cache = base + ([cache_build] if cache_build is not None else [])
    run_s = _sum(with_cache, "s", how + (" + cache build" if cache_build else ""))
    per_seed = [_sum(with_cache if builds_by_seed[s] else base, "s", "") for s in seeds]
    builds = sum(builds_by_seed[s] for s in seeds) if cache_build is not None else 0
    total = _sum(
        per_seed,
        "s",
        f"{len(seeds)} seed(s), one run after another in fresh processes (the sweep's launcher): "
        f"{how}; {builds} cache build(s) (a store is shared by seeds when the weights are "
        "pretrained and no training clip is cropped, and by strategies with the same frozen "
        "prefix)"
        if cache_build is not None
        else f"{len(seeds)} seed(s), one run after another in fresh processes (the sweep's "
        f"launcher): {how}",
    )
    return StrategyPlan(
        strategy=cal.strategy,
        precision=cal.precision,
        steps_per_epoch=steps,
        epoch_s=epoch_s,
        val_s=val_s,
        test_s=test_s,
        first_visits_s=first_visits,
        setup_s=setup_s,
        cache_build_s=cache_build,
        store=store,
        store_place=place,
        peak_memory=peak,
        fits=cal.memory.fits,
        max_batch=cal.memory.max_batch,
        energy_per_epoch=energy,
        run_s=run_s,
        total_s=total,
        cache_builds=builds,
    )
