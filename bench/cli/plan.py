"""`python -m bench.plan`: what a sweep will cost, from a few minutes of calibration.

    python -m bench.plan --strategies full,partial3+amp+cache --profile study \
        --dataset msp-podcast --data-root /data/MSP-PODCAST
    python -m bench.plan --profile study --msp-like 110000 --model small-w2v2

Takes every flag of `python -m bench.run` (the same configs are planned), plus the few below.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from bench.config import RunConfig
from bench.errors import BenchError
from bench.plan.build import Plan, make_plan
from bench.plan.corpus import PlanCorpus, from_corpus, msp_like
from bench.plan.render import print_plan, write_plan


def add_plan_arguments(ap: argparse.ArgumentParser, msp_like: bool = True) -> None:
    g = ap.add_argument_group("planning")
    if msp_like:
        g.add_argument(
            "--msp-like",
            type=int,
            default=None,
            metavar="N",
            help="plan for N clips with durations drawn like MSP-Podcast's (no audio is "
            "written; --dataset and --data-root are then ignored)",
        )
    g.add_argument(
        "--calibration-points",
        type=int,
        default=5,
        help="padded lengths timed per strategy, from the shortest to the longest bucket (>= 3 "
        "for the quadratic fit and its bound; default 5)",
    )
    g.add_argument(
        "--calibration-seconds",
        type=float,
        default=1.0,
        help="seconds of timed training steps per length, over 3 passes (default 1.0)",
    )


def add_plan_first_arguments(ap: argparse.ArgumentParser) -> None:
    """`python -m bench.run`'s flags for planning before running."""
    g = ap.add_argument_group("planning first")
    g.add_argument(
        "--plan-first",
        action="store_true",
        help="calibrate, print the plan (plan.json, plan.md in the run folder), then ask before "
        "running",
    )
    g.add_argument(
        "--yes",
        action="store_true",
        help="with --plan-first: run without asking (never asked without a terminal or in CI)",
    )
    add_plan_arguments(ap, msp_like=False)


def build_parser() -> argparse.ArgumentParser:
    from bench.cli.run import build_parser as run_parser

    ap = run_parser()
    ap.prog = "python -m bench.plan"
    ap.description = __doc__.splitlines()[0].removeprefix("`python -m bench.plan`: ")
    add_plan_arguments(ap)
    return ap


def plan_corpus(c0: RunConfig, msp_like_clips: int | None) -> PlanCorpus:
    """The corpus' lengths after the run's crop: from the audio index, or drawn MSP-like."""
    if msp_like_clips is not None:
        return msp_like(msp_like_clips, c0.train.max_seconds)
    from bench.data.datasets import load_dataset

    corpus = load_dataset(c0.data, c0.seed)
    return from_corpus(corpus, c0.train.max_seconds)


def run_plan(
    configs: list[RunConfig],
    corpus: PlanCorpus,
    out: Path,
    console: Console,
    points: int = 5,
    seconds: float = 1.0,
) -> Plan:
    """Calibrate, project, print and write the plan of `configs` into `out`."""
    from bench.meter.environment import pick_device

    if points < 1:
        raise BenchError(f"--calibration-points must be >= 1, not {points}")
    if seconds <= 0:
        raise BenchError(f"--calibration-seconds must be > 0, not {seconds:g}")
    device = pick_device(configs[0].device)
    plan = make_plan(
        configs,
        corpus,
        device,
        points,
        seconds,
        on_strategy=lambda name: console.print(
            f"calibrating {name} on {device} ...", highlight=False
        ),
    )
    print_plan(plan, console)
    js, md, plot = write_plan(plan, out)
    console.print(f"plan: {js} and {md}" + (f" and {plot}" if plot else ""), highlight=False)
    return plan


def confirm(console: Console, yes: bool) -> bool:
    """Ask whether to run; yes when --yes, and without asking where nobody can answer (stdin is
    not a terminal, or CI is set)."""
    if yes or not sys.stdin.isatty() or os.environ.get("CI"):
        return True
    answer = console.input("run it? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def main(argv: list[str] | None = None) -> int:
    from bench.cli.run import consoles

    args = build_parser().parse_args(argv)
    console, err = consoles()
    try:
        from bench.cli.run import list_strategies_text
        from bench.cli.run import plan as resolve

        if args.list_strategies:
            print(list_strategies_text())
            return 0
        t0 = time.perf_counter()
        configs, out = resolve(args)
        corpus = plan_corpus(configs[0], args.msp_like)
        run_plan(configs, corpus, out, console, args.calibration_points, args.calibration_seconds)
        console.print(f"(wall {time.perf_counter() - t0:.0f} s)", highlight=False)
        return 0
    except BenchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
