"""The ceiling a run's throughput is judged against: the same model, strategy, precision and
training step (`bench.train.step.train_step`) on one fixed batch already on the device, no loader, no
meter but the clock. `harness_efficiency` = measured samples/s / ceiling samples/s; a figure near
1 says the harness measured the strategy, not itself.

A cached strategy's ceiling reads a fixed batch of frozen-prefix features in the store's dtype,
as its training does; the others read a fixed waveform batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from bench.cache import CachedBatch
from bench.cache.prefix import STORE_DTYPES
from bench.cache.store import DTYPES
from bench.data.batching import Batch, frame_aligned, frames_of
from bench.meter.timing import synchronize
from bench.result.sections import Ceiling
from bench.train.step import Stepper, train_step

SAMPLE_RATE = 16_000


@torch.no_grad()
def fixed_batch(
    stepper: Stepper,
    batch_size: int,
    samples: int,
    n_outputs: int,
    cache_dtype: str | None,
    seed: int = 0,
) -> Batch | CachedBatch:
    """A batch of `batch_size` random clips of `samples` samples (frame-aligned) on the device;
    with `cache_dtype`, what a cached run reads instead: their frozen features in that dtype."""
    model, device = stepper.model, stepper.device
    g = torch.Generator().manual_seed(seed)
    samples = frame_aligned(samples)
    wave = torch.randn(batch_size, samples, generator=g)
    mask = torch.ones(batch_size, samples, dtype=torch.long)
    targets = torch.rand(batch_size, n_outputs, generator=g) * 2 - 1
    index = torch.arange(batch_size)
    seconds = batch_size * samples / SAMPLE_RATE
    if cache_dtype is None:
        return Batch(wave, mask, targets, index, seconds).to(device)
    was_training = model.training
    model.eval()
    with stepper.precision.autocast(device):
        feats, rows = model.frozen_features(wave.to(device), mask.to(device))
    model.train(was_training)
    dtype = DTYPES[STORE_DTYPES[cache_dtype]][0]
    assert model.layer_weights is not None or feats.shape[1] == frames_of(samples)
    return CachedBatch(feats.to(dtype), rows, targets.to(device), index, seconds, seconds)


def measure_ceiling(
    stepper: Stepper,
    batch: Batch | CachedBatch,
    warmup: int = 3,
    min_steps: int = 5,
    max_steps: int = 50,
    min_seconds: float = 1.0,
) -> Ceiling:
    """Samples/s of `train_step` on `batch`, repeated: `warmup` untimed steps, then at least
    `min_steps` and until `min_seconds` have passed (at most `max_steps`)."""
    stepper.model.train()
    for i in range(warmup):
        train_step(stepper, batch, i)
    synchronize(stepper.device)
    steps, t0 = 0, time.perf_counter()
    # One synchronisation per block of steps, not per step: the ceiling is the loop without
    # anything the meter adds.
    while steps < max_steps:
        block = min_steps if steps == 0 else min(min_steps, max_steps - steps)
        for _ in range(block):
            train_step(stepper, batch, warmup + steps)
            steps += 1
        synchronize(stepper.device)
        if time.perf_counter() - t0 >= min_seconds:
            break
    elapsed = time.perf_counter() - t0
    n = len(batch.index)
    return Ceiling(n * steps / elapsed, n, batch_shape_samples(batch), steps, warmup, elapsed)


def batch_shape_samples(batch: Batch | CachedBatch) -> int:
    return round(batch.padded_seconds * SAMPLE_RATE / len(batch.index))


@dataclass(frozen=True)
class GpuActivity:
    """What the GPU did during training steps, per step, from the profiler's device clock."""

    busy: float  # share of the step's wall time with a kernel running (overlaps counted once)
    gpu_ops: float  # kernels, copies and memsets the host launched
    top: list[tuple[str, float, float]]  # (kernel, device ms, calls), longest total first


@dataclass(frozen=True)
class StepProfile:
    host_ops: float  # aten operators the host dispatched per step, nested calls included
    gpu: GpuActivity | None  # None off CUDA, or when the profiler saw no kernels (no CUPTI)


def profile_step(
    stepper: Stepper, batch: Batch | CachedBatch, step_s: float, steps: int = 3, top: int = 8
) -> StepProfile:
    """Profile `steps` training steps (one off CUDA: operator counts do not vary) whose wall
    time `step_s` was measured without the profiler.

    `host_ops` counts what the host dispatches, on any device: on a CPU it is the proxy for a
    GPU step's launch cost. On CUDA, a busy share near 1 says the GPU is the limit; well below
    1, it idles between kernels, waiting for the host to launch them, and a faster kernel (mixed
    precision) cannot shorten the step. Durations come from the device's clock, so the
    profiler's own host overhead does not inflate them. No kernels recorded (no CUPTI) gives
    `gpu` None: unknown, not idle."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = stepper.device.type == "cuda"
    steps = steps if cuda else 1
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    synchronize(stepper.device)
    with profile(activities=activities, acc_events=True) as prof:
        for i in range(steps):
            train_step(stepper, batch, i)
        synchronize(stepper.device)
    events = prof.events()
    host_ops = sum(
        1 for e in events if e.device_type == DeviceType.CPU and e.name.startswith("aten::")
    )
    kernels = [
        (e.name, e.time_range.start, e.time_range.end)
        for e in events
        if e.device_type == DeviceType.CUDA
    ]
    gpu = None
    if kernels:
        gpu = GpuActivity(
            busy=covered([(a, b) for _, a, b in kernels]) / 1e6 / steps / step_s,
            gpu_ops=len(kernels) / steps,
            top=top_kernels([(n, b - a) for n, a, b in kernels], steps, top),
        )
    return StepProfile(host_ops / steps, gpu)


def top_kernels(
    events: list[tuple[str, float]], steps: int, n: int
) -> list[tuple[str, float, float]]:
    """(name, duration in us) events -> the `n` names with the most device time: (name, ms per
    step, calls per step)."""
    totals: dict[str, list[float]] = {}
    for name, us in events:
        t = totals.setdefault(name, [0.0, 0])
        t[0] += us
        t[1] += 1
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][0])[:n]
    return [(name, us / 1e3 / steps, calls / steps) for name, (us, calls) in ranked]


def covered(spans: list[tuple[float, float]]) -> float:
    """Total length of the union of [start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
