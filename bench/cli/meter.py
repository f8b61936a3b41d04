"""Meter overhead: the same training steps with the meter on (per-step device sync and allocator
reads, NVML sampler process) and off, interleaved in blocks so drift affects both alike.

    python -m bench.cli.meter [--model small-w2v2] [--device auto] [--steps 20] [--rounds 5]

Prints the median per-step time of each and their ratio; the target is at most 1.01.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.config import PROFILES, DataConfig, RunConfig
from bench.errors import run_cli
from bench.meter import MemoryTracker, StepTimer
from bench.meter.environment import describe_device
from bench.meter.timing import synchronize
from bench.train.ceiling import fixed_batch
from bench.train.setup import setup_run
from bench.train.step import train_step


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.cli.meter", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--model", default="small-w2v2")
    ap.add_argument("--strategy", default="partial3")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=20, help="steps per block")
    ap.add_argument("--rounds", type=int, default=5, help="on/off block pairs")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0, help="clip length")
    args = ap.parse_args(argv)

    smoke = PROFILES["smoke"]  # its tiny corpus only; the model and batch come from the flags
    cfg = RunConfig(
        "smoke",
        args.strategy,
        0,
        args.model,
        "random",
        args.device,
        smoke.train,
        DataConfig("synthetic", None, False, smoke.synthetic),
    )
    ctx = setup_run(cfg)
    device, spec, loaded, stepper = ctx.device, ctx.spec, ctx.loaded, ctx.stepper
    batch = fixed_batch(
        stepper,
        args.batch_size,
        round(args.seconds * 16_000),
        len(ctx.corpus.dimensions),
        spec.modifiers.cache_dtype if spec.modifiers.cache else None,
    )
    steps = iter(range(10**9))

    def step() -> None:
        train_step(stepper, batch, next(steps))

    def block(metered: bool) -> float:
        synchronize(device)
        t0 = time.perf_counter()
        if metered:
            tracker = MemoryTracker(device)
            with tracker.track():
                timer = StepTimer(device, warmup_steps=0)
                timer.start_epoch()
                for _ in range(args.steps):
                    with timer.step(args.batch_size, args.batch_size * args.seconds):
                        step()
        else:
            for _ in range(args.steps):
                step()
        synchronize(device)
        return (time.perf_counter() - t0) / args.steps

    for _ in range(3):  # warm-up: allocator, kernels, caches
        step()
    on, off = [], []
    for r in range(args.rounds):
        first, second = (True, False) if r % 2 == 0 else (False, True)
        for metered in (first, second):
            (on if metered else off).append(block(metered))
    m_on, m_off = statistics.median(on), statistics.median(off)
    dev = describe_device(device)
    print(
        f"device: {dev['type']} {dev['name']}; model {args.model} ({loaded.weights}); strategy {args.strategy}; "
        f"batch {args.batch_size} x {args.seconds:g} s; {args.rounds} rounds x {args.steps} steps"
    )
    print(f"step time, meter off: {m_off * 1000:.2f} ms (median of blocks)")
    print(
        f"step time, meter on:  {m_on * 1000:.2f} ms (median of blocks; includes NVML sampler start/stop per block)"
    )
    print(f"meter overhead ratio (on/off): {m_on / m_off:.4f}  target <= 1.01")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
