"""`make bench-ceiling`: each strategy's ceiling next to what a sweep measured.

    python -m bench.bench_ceiling [RUN_DIR] [--strategies all] [--device auto]

For every result in RUN_DIR (default reports/quick): the same model architecture, strategy,
precision and training step (`bench.step.train_step`) on one fixed batch already on the device,
at the run's batch size and mean padded length, no loader and no meter but the clock. Prints the
ceiling, the sweep's steady-state samples/s and their ratio, the harness efficiency (the run
also measured its own ceiling in-process; that figure is shown beside it). Without results it
prints the ceilings alone, at the profile's batch size and crop length, and says so.
"""

from __future__ import annotations

import argparse
import gc

import torch
from rich.console import Console
from rich.table import Table

from bench.ceiling import fixed_batch, measure_ceiling
from bench.config import get_profile
from bench.environment import describe_device, pick_device
from bench.model import build_model
from bench.results import load_results
from bench.step import make_stepper, resolve_precision
from strategies import parse_strategy


def ceiling_for(model_name: str, spelling: str, batch_size: int, samples: int, device) -> float:
    """Ceiling samples/s of `spelling` on `model_name` (random init: speed does not depend on
    the weights' values, and nothing is downloaded)."""
    spec = parse_strategy(spelling)
    model, _ = build_model(model_name, "random", 0, spec.strategy)
    model.to(device)
    precision = resolve_precision(spec.modifiers.precision, device)
    stepper = make_stepper(model, spec.strategy, precision, device, 1e-5, 1e-3, 0.01)
    cache = spec.modifiers.cache_dtype if spec.modifiers.cache else None
    ceiling = measure_ceiling(stepper, fixed_batch(stepper, batch_size, samples, 3, cache))
    del stepper, model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return ceiling.samples_per_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bench_ceiling", description=__doc__.splitlines()[0]
    )
    ap.add_argument("run_dir", nargs="?", default="reports/quick")
    ap.add_argument("--strategies", default=None, help="comma list (default: those in RUN_DIR)")
    ap.add_argument("--profile", default="quick", help="settings used when RUN_DIR has no results")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    console = Console() if Console().is_terminal else Console(width=160)
    results = [r for r in load_results(args.run_dir) if r.ok and r.efficiency]
    wanted = None if args.strategies is None else set(args.strategies.split(","))
    if wanted is not None:
        results = [r for r in results if r.strategy in wanted]
    dev = describe_device(device)
    table = Table(title=f"ceiling vs measured on {dev['type']} {dev['name']}")
    for col in ("strategy", "seed", "batch x length", "ceiling now", "measured", "efficiency"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    table.add_column("in-run ceiling / efficiency", justify="right")
    if not results:
        profile = get_profile(args.profile)
        from bench.run import ALL

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


if __name__ == "__main__":
    raise SystemExit(main())
