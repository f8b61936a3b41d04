"""Calibration: time one strategy's work at a few padded lengths, on this machine.

For each length: the training step (`bench.train.step.train_step` through `bench.train.ceiling`, the same
step every run times), its first visit (what a new input shape costs once), the evaluation
forward pass, and, for a cached strategy, the frozen prefix that builds the cache. On CUDA, the
allocator's peak at the longest length (and at half the batch, to find the largest batch that
fits) and the NVML energy counter around the timed steps. The backbone is randomly initialised:
speed and memory do not depend on the weights' values, and nothing is downloaded.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bench.config import TrainConfig
from bench.data.batching import LengthGrid, frame_aligned
from bench.meter.timing import synchronize
from bench.model.ser import build_model, prepare_forward
from bench.plan.fit import LengthFit, fit_lengths
from bench.train.ceiling import fixed_batch, measure_ceiling
from bench.train.step import Stepper, forward, make_stepper, resolve_precision, train_step
from strategies import parse_strategy

MIB = 2**20
# At most this share of a strategy's projected training steps is spent timing it: a small sweep
# is planned in seconds, not minutes (smoke `all`: 84 s of calibration for a 5 s sweep before).
SWEEP_SHARE = 0.25
# Of the device's memory, what a run may plan to use: the CUDA context, the allocator's
# fragmentation and the NVML sampler's view sit above torch's allocated peak.
USABLE_SHARE = 0.9


@dataclass(frozen=True)
class MemoryProbe:
    """Peak GPU memory at the longest length, or why it could not be measured here."""

    peak_mib: float | None  # torch.cuda.max_memory_allocated over steps at the longest length
    device_mib: float | None
    batch_size: int  # the batch the peak was measured at
    fits: bool | None
    max_batch: int | None  # largest batch that fits in USABLE_SHARE of the device, projected
    method: str


@dataclass(frozen=True)
class Calibration:
    strategy: str
    precision: str
    device: str
    batch_size: int
    train: LengthFit | None  # seconds per training step; None: did not fit in memory
    eval: LengthFit | None  # seconds per evaluation batch (forward, no grad)
    prefix: LengthFit | None  # seconds per cache-building batch; None: not a cached strategy
    first_visit_s: float | None  # extra seconds of a step at a length the run has not seen yet
    representation: str | None  # the cached tensor's name (shared stores share it)
    store_dtype: str | None  # fp16 | bf16 | fp32
    hidden_size: int
    pooled_rows: int | None  # rows per clip when the cache holds pooled states (head), else frames
    memory: MemoryProbe
    power_w: float | None  # mean device power during the timed training steps (NVML)
    power_note: str
    build_s: float  # building the model: part of every run's setup
    wall_s: float  # this calibration, start to end
    seconds_per_point: float | None = None  # training steps timed per length (after scaling)
    # The run's own ceiling, timed the way a run times it after training (bench/train/worker.py:
    # one fixed batch, 3 untimed steps, then >= 5), at the length the plan expects the run's
    # mean padded length to be: what a run's ceiling is compared with to tell how the
    # machine's speed changed between planning and running (bench/plan/check.py).
    probe_samples: int | None = None
    probe_step_s: float | None = None

    def to_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        for k in ("train", "eval", "prefix"):
            fit = getattr(self, k)
            d[k] = fit.to_dict() if fit else None
        return d


def calibration_lengths(grid: LengthGrid, points: int) -> list[int]:
    """`points` grid lengths evenly spread from the shortest to the longest bucket."""
    lengths = grid.lengths
    if not lengths:
        return []
    picks = np.linspace(0, len(lengths) - 1, min(points, len(lengths))).round().astype(int)
    return sorted({lengths[i] for i in picks})


def _rounds(
    lengths: list[int], seconds_at: Callable[[int], float], rounds: int
) -> list[tuple[int, float]]:
    """(length, median seconds) over `rounds` passes, ascending then descending in turn: a burst
    of load from elsewhere on the machine hits one pass of a length, not the median."""
    times: dict[int, list[float]] = {n: [] for n in lengths}
    for r in range(rounds):
        for n in lengths if r % 2 == 0 else lengths[::-1]:
            times[n].append(seconds_at(n))
    return [(n, statistics.median(times[n])) for n in lengths]


def _seconds_per_call(fn: Callable[[], object], device: torch.device, min_s: float) -> float:
    fn()  # the first call at a shape is not steady state
    synchronize(device)
    calls, t0 = 0, time.perf_counter()
    while calls < 2 or (time.perf_counter() - t0 < min_s and calls < 50):
        fn()
        calls += 1
        synchronize(device)
    return (time.perf_counter() - t0) / calls


class _Energy:
    """NVML's total-energy counter of the device, or why there is none."""

    def __init__(self, device: torch.device):
        self.read: Callable[[], float] | None = None
        if device.type != "cuda":
            self.note = (
                f"no CUDA device ({device.type}): energy cannot be projected on this machine"
            )
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as exc:  # no pynvml, or a GPU without the counter
            self.note = f"NVML energy counter unavailable ({type(exc).__name__}: {exc})"
            return
        self.read = lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0
        self.note = "NVML total-energy counter over the timed training steps, as mean power"


def _memory_probe(
    stepper: Stepper, longest: int, batch_size: int, n_out: int, cache: str | None
) -> MemoryProbe:
    device = stepper.device
    if device.type != "cuda":
        return MemoryProbe(
            None, None, batch_size, None, None,
            f"no CUDA device ({device.type}): GPU memory cannot be projected on this machine",
        )  # fmt: skip
    total = torch.cuda.get_device_properties(device).total_memory / MIB
    peaks: dict[int, float] = {}
    b, oom_at = batch_size, None
    while b >= 1 and len(peaks) < 2:
        try:
            batch = fixed_batch(stepper, b, longest, n_out, cache)
            torch.cuda.reset_peak_memory_stats(device)
            for i in range(2):
                train_step(stepper, batch, i)
            synchronize(device)
            peaks[b] = torch.cuda.max_memory_allocated(device) / MIB
        except torch.cuda.OutOfMemoryError:
            oom_at = oom_at or b
        finally:
            batch = None
            gc.collect()
            torch.cuda.empty_cache()
        if b == 1:
            break
        b //= 2
    if not peaks:
        return MemoryProbe(
            None, total, batch_size, False, 0,
            f"out of memory at batch 1 and {longest} samples: the longest bucket does not fit",
        )  # fmt: skip
    sizes = sorted(peaks)
    measured = max(sizes)
    max_batch = None
    if len(sizes) == 2 and peaks[sizes[1]] > peaks[sizes[0]]:
        per_clip = (peaks[sizes[1]] - peaks[sizes[0]]) / (sizes[1] - sizes[0])
        fixed = peaks[sizes[1]] - per_clip * sizes[1]
        max_batch = max(0, int((USABLE_SHARE * total - fixed) // per_clip))
    fits = oom_at is None and peaks[measured] <= USABLE_SHARE * total
    how = (
        f"torch allocator peak over 2 steps at {longest} samples, measured at batch "
        f"{', '.join(map(str, sizes))}; largest batch: linear in batch size to "
        f"{USABLE_SHARE:.0%} of {total:.0f} MiB"
    )
    if oom_at is not None:
        how += f"; out of memory at batch {oom_at}"
    return MemoryProbe(peaks[measured], total, measured, fits, max_batch, how)


def calibrate(
    spelling: str,
    model_name: str,
    train_cfg: TrainConfig,
    grid: LengthGrid,
    n_outputs: int,
    device: torch.device,
    points: int = 5,
    point_seconds: float = 1.0,
    rounds: int = 3,
    sweep_steps: int | None = None,
    probe_samples: int | None = None,
) -> Calibration:
    """Time `spelling` at `points` lengths of `grid` with the run's batch size and precision,
    `point_seconds` of training steps per length, spread over `rounds` passes. `sweep_steps`:
    the training steps the sweep will run of this strategy; timing then costs at most
    SWEEP_SHARE of their duration, as the first visits estimate it (never below two steps a
    length and pass)."""
    t_start = time.perf_counter()
    spec = parse_strategy(spelling)
    mods = spec.modifiers
    model, _ = build_model(model_name, "random", 0, spec.strategy, n_outputs=n_outputs)
    model.to(device)
    prepare_forward(model, mods, device)
    build_s = time.perf_counter() - t_start
    precision = resolve_precision(mods.precision, device)
    lr = train_cfg.lr or spec.strategy.default_lr * train_cfg.lr_scale
    stepper = make_stepper(
        model, spec.strategy, precision, device, lr, train_cfg.head_lr, train_cfg.weight_decay,
        max_grad_norm=train_cfg.max_grad_norm,
    )  # fmt: skip
    spec.strategy.begin_training(model, 10**6)
    cache = mods.cache_dtype if mods.cache else None
    bs = train_cfg.batch_size
    lengths = calibration_lengths(grid, points)
    energy = _Energy(device)
    memory = _memory_probe(stepper, lengths[-1], bs, n_outputs, cache)
    usable = [n for n in lengths if memory.fits is not False]
    batches = {n: fixed_batch(stepper, bs, n, n_outputs, cache) for n in usable}
    waves = {n: fixed_batch(stepper, bs, n, n_outputs, None) for n in usable} if cache else {}
    model.train()
    first = {}
    for n in usable:  # each length's first visit, timed on its own
        t0 = time.perf_counter()
        train_step(stepper, batches[n], 0)
        synchronize(device)
        first[n] = time.perf_counter() - t0
    share = point_seconds / rounds
    if sweep_steps is not None and first:
        # A first visit costs at least a steady step: this overestimates the sweep, never under.
        sweep_s = sweep_steps * statistics.median(first.values())
        share = min(share, SWEEP_SHARE * sweep_s / (len(usable) * rounds * 2))  # train + eval

    def step_s(n: int) -> float:
        c = measure_ceiling(stepper, batches[n], warmup=0, min_steps=2, min_seconds=share)
        return c.seconds / c.steps

    e0, t0 = (energy.read() if energy.read and usable else None), time.perf_counter()
    train_pts = _rounds(usable, step_s, rounds)
    power = None if e0 is None else (energy.read() - e0) / (time.perf_counter() - t0)
    probe_s = None
    if probe_samples is not None and memory.fits is not False:
        probe_samples = frame_aligned(probe_samples)
        probe = measure_ceiling(
            stepper,
            fixed_batch(stepper, bs, probe_samples, n_outputs, cache),
            min_seconds=min(1.0, share * rounds),
        )
        probe_s = probe.seconds / probe.steps
    model.eval()
    with torch.no_grad(), precision.autocast(device):
        eval_pts = _rounds(
            usable,
            lambda n: _seconds_per_call(lambda: forward(model, batches[n]), device, share / 2),
            rounds,
        )
        prefix_pts = (
            _rounds(
                usable,
                lambda n: _seconds_per_call(
                    lambda: model.frozen_features(waves[n].inputs, waves[n].attention_mask),
                    device,
                    share / 2,
                ),
                rounds,
            )
            if cache
            else []
        )
    model.train()
    steady = dict(train_pts)
    excess = [max(0.0, first[n] - steady[n]) for n in usable]
    result = Calibration(
        strategy=spelling,
        precision=precision.name,
        device=str(device),
        batch_size=bs,
        train=fit_lengths(train_pts) if train_pts else None,
        eval=fit_lengths(eval_pts) if eval_pts else None,
        prefix=fit_lengths(prefix_pts) if prefix_pts else None,
        # The first length also pays one-off initialisation; the median keeps to the typical.
        first_visit_s=statistics.median(excess) if excess else None,
        representation=model.cached_representation() if cache else None,
        store_dtype=cache,
        hidden_size=model.backbone.config.hidden_size,
        pooled_rows=model.num_layers + 1 if model.layer_weights is not None else None,
        memory=memory,
        power_w=power,
        power_note=energy.note,
        build_s=build_s,
        wall_s=time.perf_counter() - t_start,
        seconds_per_point=share * rounds,
        probe_samples=probe_samples if probe_s is not None else None,
        probe_step_s=probe_s,
    )
    return result  # the model goes with this frame; make_plan collects it before the next
