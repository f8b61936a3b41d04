"""`make bench-ceiling`: each strategy's ceiling next to what a sweep measured.

    python -m bench.cli.ceiling [RUN_DIR] [--strategies all] [--device auto]
    python -m bench.cli.ceiling --lengths 3,5,8 --strategies partial3,partial3+amp [--model M]
        [--top-kernels 8]

For every result in RUN_DIR (default reports/quick): the same model architecture, strategy,
precision and training step (`bench.train.step.train_step`) on one fixed batch already on the device,
at the run's batch size and mean padded length, no loader and no meter but the clock. Prints the
ceiling, the sweep's steady-state samples/s and their ratio, the harness efficiency (the run
also measured its own ceiling in-process; that figure is shown beside it). Without results it
prints the ceilings alone, at the profile's batch size and crop length, and says so.

With --lengths, no results are read: each strategy's ceiling at each clip length, its speed
against the first strategy listed at that length, and on a GPU the share of the step the GPU
spends running kernels and how many GPU operations the host launches per step. Whether mixed
precision pays depends on that share: a step whose GPU waits for the host to launch kernels
does not get faster when the kernels do. --top-kernels N lists, per strategy at the first
length, the N kernels with the most device time: where a busy GPU spends the step.
"""

from __future__ import annotations

import argparse
import gc
from dataclasses import dataclass

import torch
from rich.console import Console
from rich.table import Table

from bench.cli.args import ALL, strategy_names
from bench.config import TrainConfig, get_profile
from bench.errors import BenchError, run_cli
from bench.meter.environment import describe_device, pick_device
from bench.model.ser import build_model, prepare_forward
from bench.result.store import load_results
from bench.train.ceiling import GpuActivity, StepProfile, fixed_batch, measure_ceiling, profile_step
from bench.train.step import apply_fp32_math, make_stepper, resolve_precision
from strategies import parse_strategy


@dataclass(frozen=True)
class LengthCeiling:
    samples_per_s: float
    profile: StepProfile | None  # None when not asked for


def ceilings_for(
    model_name: str,
    spelling: str,
    batch_size: int,
    lengths: list[int],
    device,
    min_seconds: float = 1.0,
    profile: bool = True,
) -> list[LengthCeiling]:
    """Ceilings of `spelling` on `model_name` at each length in samples, one model for all
    (random init: speed does not depend on the weights' values, and nothing is downloaded);
    with `profile`, each also with a profile of its step (a few more steps, under the profiler)."""
    spec = parse_strategy(spelling)
    train = TrainConfig()  # fp32 math as a run has it by default (--tf32, --cudnn-benchmark)
    apply_fp32_math(train.tf32, train.cudnn_benchmark, device)
    model, _ = build_model(model_name, "random", 0, spec.strategy)
    model.to(device)
    prepare_forward(model, spec.modifiers, device)  # +ckpt, +compile, +graph as a run has them
    precision = resolve_precision(spec.modifiers.precision, device)
    stepper = make_stepper(model, spec.strategy, precision, device, 1e-5, 1e-3, 0.01)
    cache = spec.modifiers.cache_dtype if spec.modifiers.cache else None
    out = []
    for samples in lengths:
        batch = fixed_batch(stepper, batch_size, samples, 3, cache)
        c = measure_ceiling(stepper, batch, min_seconds=min_seconds)
        step = profile_step(stepper, batch, c.seconds / c.steps) if profile else None
        out.append(LengthCeiling(c.samples_per_s, step))
    del stepper, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def ceiling_for(model_name: str, spelling: str, batch_size: int, samples: int, device) -> float:
    (c,) = ceilings_for(model_name, spelling, batch_size, [samples], device, profile=False)
    return c.samples_per_s


def failure_reason(exc: BaseException) -> str:
    """One line naming an exception: its type and its message's first line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def length_table(
    model_name: str,
    names: list[str],
    batch_size: int,
    seconds: list[float],
    device,
    min_seconds: float = 1.0,
) -> tuple[Table, dict[str, list[LengthCeiling]], dict[str, str]]:
    """Ceilings of `names` at each clip length in `seconds`, against the first of `names`: the
    table, the ceilings behind it by strategy, and why any strategy failed. A strategy that
    fails for any reason (out of memory, a capture that fails, a bug) gets its reason in its
    row; the others are still measured: a short GPU window must not lose the rows it paid for."""
    for name in names:
        parse_strategy(name)  # a misspelt name is an error before anything is measured
    lengths = [round(s * 16_000) for s in seconds]
    rows: dict[str, list[LengthCeiling]] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            rows[name] = ceilings_for(model_name, name, batch_size, lengths, device, min_seconds)
        except Exception as exc:  # any failure: the row says why, the next strategy runs
            failed[name] = failure_reason(exc)
            # What the failed strategy left on the device must not fail the next one.
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    first = rows.get(names[0])
    cuda = device.type == "cuda"
    table = Table(
        title=f"ceiling by clip length: {model_name}, batch {batch_size}, on "
        f"{describe_device(device)['name']}"
        + ("" if cuda else " (GPU busy share: measured on CUDA only)")
    )
    table.add_column("strategy")
    for s in seconds:
        table.add_column(f"{s:g} s: samples/s", justify="right")
        table.add_column(f"vs {names[0]}", justify="right")
        table.add_column("host ops/step", justify="right")
        if cuda:
            table.add_column("GPU busy", justify="right")
            table.add_column("GPU ops/step", justify="right")
    per_length = 5 if cuda else 3
    for name in names:
        if name in failed:
            why = failed[name] if len(failed[name]) <= 80 else failed[name][:77] + "..."
            table.add_row(name, f"failed: {why}", *["-"] * (per_length * len(seconds) - 1))
            continue
        cells = [name]
        for i, c in enumerate(rows[name]):
            vs = f"{c.samples_per_s / first[i].samples_per_s:.2f}x" if first else "-"
            cells += [f"{c.samples_per_s:.1f}", vs, f"{c.profile.host_ops:.0f}"]
            if cuda:
                gpu = c.profile.gpu
                cells += [f"{gpu.busy:.0%}", f"{gpu.gpu_ops:.0f}"] if gpu else ["n/a"] * 2
        table.add_row(*cells)
    return table, rows, failed


def kernel_table(name: str, seconds: float, profile: GpuActivity) -> Table:
    """The kernels with the most device time in one step of `name`."""
    table = Table(title=f"{name} at {seconds:g} s: kernels by device time per step")
    for col in ("kernel", "ms/step", "calls/step"):
        table.add_column(col, justify="left" if col == "kernel" else "right")
    for kernel, ms, calls in profile.top:
        shown = kernel if len(kernel) <= 90 else kernel[:87] + "..."
        table.add_row(shown, f"{ms:.2f}", f"{calls:.0f}")
    return table


def parse_seconds(text: str) -> list[float]:
    try:
        seconds = [float(x) for x in text.split(",")]
    except ValueError:
        seconds = []
    if not seconds or any(not s > 0 for s in seconds):
        raise BenchError(
            f"--lengths takes positive clip seconds, comma separated (3,5,8); got {text!r}"
        )
    return seconds


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.cli.ceiling", description=__doc__.splitlines()[0]
    )
    ap.add_argument("run_dir", nargs="?", default="reports/quick")
    ap.add_argument("--strategies", default=None, help="comma list (default: those in RUN_DIR)")
    ap.add_argument("--profile", default="quick", help="settings used when RUN_DIR has no results")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--lengths",
        default=None,
        help="comma list of clip seconds (3,5,8): ceilings of --strategies at each length, "
        "RUN_DIR unread; speed against the first strategy listed",
    )
    ap.add_argument("--model", default=None, help="with --lengths (default: the profile's)")
    ap.add_argument("--batch-size", type=int, default=None, help="with --lengths (profile's)")
    ap.add_argument(
        "--top-kernels",
        type=int,
        default=0,
        metavar="N",
        help="with --lengths on CUDA: the N kernels with the most device time per strategy",
    )
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    console = Console() if Console().is_terminal else Console(width=160)
    if args.lengths is not None:
        profile = get_profile(args.profile)
        names = strategy_names(args.strategies) or ["partial3", "partial3+amp"]
        seconds = parse_seconds(args.lengths)
        table, rows, failed = length_table(
            args.model or profile.model,
            names,
            args.batch_size or profile.train.batch_size,
            seconds,
            device,
        )
        console.print(table)
        for name, cs in rows.items():
            if args.top_kernels and cs[0].profile.gpu is not None:
                console.print(kernel_table(name, seconds[0], cs[0].profile.gpu))
        if args.top_kernels and device.type != "cuda":
            console.print("--top-kernels: kernels are profiled on CUDA only; none listed")
        for name, why in failed.items():
            console.print(f"[red]{name} failed:[/red] {why}", highlight=False)
        return 1 if failed else 0
    results = [r for r in load_results(args.run_dir) if r.ok and r.efficiency]
    wanted = None if args.strategies is None else set(strategy_names(args.strategies))
    if wanted is not None:
        results = [r for r in results if r.strategy in wanted]
    dev = describe_device(device)
    table = Table(title=f"ceiling vs measured on {dev['type']} {dev['name']}")
    for col in ("strategy", "seed", "batch x length", "ceiling now", "measured", "efficiency"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    table.add_column("in-run ceiling / efficiency", justify="right")
    if not results:
        profile = get_profile(args.profile)
        names = sorted(wanted) if wanted else ALL
        samples = round((profile.train.max_seconds or 5.0) * 16_000)
        console.print(
            f"no results in {args.run_dir}: ceilings alone, at the {profile.name} profile's batch "
            f"size and crop ({samples / 16_000:g} s); run the sweep first for efficiencies"
        )
        for name in names:
            c = ceiling_for(profile.model, name, profile.train.batch_size, samples, device)
            table.add_row(
                name,
                "-",
                f"{profile.train.batch_size} x {samples}",
                f"{c:.1f}",
                "not run",
                "-",
                "-",
            )
        console.print(table)
        return 0
    for r in sorted(results, key=lambda r: (r.strategy, r.seed)):
        eff, thr = r.efficiency, r.efficiency.throughput
        measured = thr.train_samples_per_s if thr else None
        if not measured or not thr.padded_audio_s_per_sample:
            continue
        samples = round(thr.padded_audio_s_per_sample * 16_000)
        batch = r.config["train"]["batch_size"]
        c = ceiling_for(str(r.model.name), r.strategy, batch, samples, device)
        in_run = eff.ceiling
        table.add_row(
            r.strategy,
            str(r.seed),
            f"{batch} x {samples}",
            f"{c:.1f}",
            f"{measured:.1f}",
            f"{measured / c:.2f}",
            f"{in_run.samples_per_s:.1f} / {eff.harness_efficiency:.2f}"
            if in_run and eff.harness_efficiency
            else "not recorded",
        )
    devices = {(r.device or {}).get("name") for r in results}
    if devices != {dev["name"]}:
        console.print(
            f"[yellow]note:[/yellow] the results ran on {', '.join(map(str, devices))}, the ceiling "
            f"now on {dev['name']}: compare the in-run column instead"
        )
    console.print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
