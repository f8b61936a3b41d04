"""`python -m bench.run`: plan the sweep, validate everything up front, run it, render the report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console

from bench.cli.args import (
    add_plan_first_arguments,
    build_run_parser,
    configs_from_args,
    consoles,
    list_strategies_text,
)
from bench.cli.planning import confirm, run_plan
from bench.config import RunConfig
from bench.data.adapters.validate import describe_problems
from bench.data.datasets import Corpus, load_dataset
from bench.errors import run_cli
from bench.launch import launch_sweep
from bench.launch.options import launch_options
from bench.meter.environment import pick_device
from bench.plan.corpus import from_corpus
from bench.report import print_summary, render
from bench.report.target import TARGET_CCC_HELP, target_from


def build_parser() -> argparse.ArgumentParser:
    """The run flags (bench/cli/args.py) plus --plan-first and its own."""
    parser = build_run_parser()
    add_plan_first_arguments(parser)
    add_report_arguments(parser)
    return parser


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's own options (the same flags as `python -m bench.report`)."""
    g = parser.add_argument_group("report")
    g.add_argument("--target-ccc", type=float, default=None, help=TARGET_CCC_HELP)


def plan_then_confirm(
    args: argparse.Namespace, configs: list[RunConfig], corpus: Corpus, out: Path, console: Console
) -> bool:
    """--plan-first: print and write the plan, then whether to go on (asked on a terminal)."""
    lengths = from_corpus(corpus, configs[0].train.max_seconds)
    run_plan(configs, lengths, out, console, args.calibration_points, args.calibration_seconds)
    return confirm(console, args.yes)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    console, err = consoles()
    if args.list_strategies:
        print(list_strategies_text())
        return 0
    launch = launch_options(args)
    target = target_from(args.target_ccc)  # refused before anything trains
    configs, out = configs_from_args(args)
    c0 = configs[0]
    t0 = time.perf_counter()
    # Validate the data once, up front: a bad manifest fails here, not halfway through a sweep.
    # Every seed's and fold's split is checked too (a seeded split can come out empty); audio
    # is checked once and remembered, so the later loads here and in each run cost a manifest
    # read.
    for cfg in {(c.seed, c.data.fold): c for c in configs}.values():
        corpus = load_dataset(cfg.data, cfg.seed)
    if corpus.problems:
        err.print(
            f"[yellow]warning:[/yellow] skipped {describe_problems(corpus.problems)} "
            "(listed in each result's data.skipped_reasons; --strict makes them errors)",
            highlight=False,
        )
    if not args.quiet:
        console.print(
            f"[bold]serbench[/bold] profile={c0.profile} model={','.join(dict.fromkeys(c.model for c in configs))} device={pick_device(c0.device)} "
            f"corpus={corpus.name} ({sum(corpus.summary()['n_utterances'].values())} clips) "
            f"runs={len(configs)} -> {out}"
        )
    if args.plan_first and not plan_then_confirm(args, configs, corpus, out, console):
        console.print(f"not run; the plan is in {out}/plan.md")
        return 0
    results = launch_sweep(
        configs, out, Console(quiet=args.quiet, width=console.width), launch, force=args.force
    )
    if results is None:  # --no-wait: the runs go on without this process
        return 0
    for note in sorted({n for r in results for n in r.notes if "RANDOM-INIT" in n}):
        err.print(f"[bold red]WARNING:[/bold red] {note}")
    rendered = render(out, results, tolerance=args.tolerance, target=target)
    print_summary(rendered.report, console)
    console.print(
        f"report: {rendered.markdown} and {rendered.html}  (wall {time.perf_counter() - t0:.0f} s)"
    )
    return 0 if all(r.ok for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        _main, argv, interrupted="finished results are kept; rerun the same command to resume"
    )


if __name__ == "__main__":
    sys.exit(main())
