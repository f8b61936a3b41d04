"""`python -m bench.run`: plan the sweep, validate everything up front, run it, render the report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

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
from bench.errors import BenchError, run_cli
from bench.launch import launch_sweep
from bench.launch.folder_lock import run_folder_lock
from bench.launch.options import LaunchOptions, launch_options
from bench.meter.environment import pick_device
from bench.report import print_summary, render
from bench.report.header import different_data
from bench.report.target import TARGET_CCC_HELP, Target, target_from
from bench.result.store import load_results, other_sweeps, supersede, write_sweep_notes


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
    run_plan(configs, corpus, out, console, args.calibration_points, args.calibration_seconds)
    return confirm(console, args.yes)


def one_configuration(out: Path, configs: list[RunConfig], force: bool, console: Console) -> None:
    """Refuse to mix experiments in one run folder: results of another configuration there
    are an error, or, with --force, kept under results/superseded/ before this sweep runs."""
    others = other_sweeps(out, {c.sweep_hash() for c in configs})
    if not others:
        return
    if not force:
        raise BenchError(
            f"{out} holds {len(others)} result(s) of another configuration (another corpus, "
            f"profile, model settings or training setting), e.g. {others[0].name}: a run folder "
            "holds one sweep, so that its report never averages different experiments. Use "
            "another --out, or --force to keep those results under results/superseded/ and run "
            "this sweep here"
        )
    for path in others:
        kept = supersede(path)
        console.print(f"[dim]--force: {path.name} (another configuration) kept as {kept}[/dim]")


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    console, err = consoles()
    if args.list_strategies:
        print(list_strategies_text())
        return 0
    launch = launch_options(args)
    target = target_from(args.target_ccc)  # refused before anything trains
    configs, out, notes = configs_from_args(args)
    # One writer per run folder, from the first file this command moves or writes there to its
    # report: a second sweep on --out is refused here, naming this one.
    with run_folder_lock(out):
        return _sweep(args, launch, configs, out, notes, target, console, err)


def _sweep(
    args: argparse.Namespace,
    launch: LaunchOptions,
    configs: list[RunConfig],
    out: Path,
    notes: list[str],
    target: Target,
    console: Console,
    err: Console,
) -> int:
    """The sweep of `_main`, under the run folder's lock."""
    c0 = configs[0]
    one_configuration(out, configs, args.force, console)
    t0 = time.perf_counter()
    # Validate the data once, up front: a bad manifest fails here, not halfway through a sweep.
    # Every seed's and fold's split is checked too (a seeded split can come out empty); audio
    # is checked once and remembered, so the later loads here and in each run cost a manifest
    # read.
    for cfg in {(c.seed, c.data.fold): c for c in configs}.values():
        corpus = load_dataset(cfg.data, cfg.seed)
    if corpus.problems:
        err.print(
            f"[yellow]warning:[/yellow] skipped {escape(describe_problems(corpus.problems))} "
            "(listed in each result's data.skipped_reasons; --strict makes them errors)",
            highlight=False,
        )
    if not args.quiet:
        console.print(
            "[bold]serbench[/bold] "
            + escape(
                f"profile={c0.profile} model={','.join(dict.fromkeys(c.model for c in configs))} "
                f"device={pick_device(c0.device)} corpus={corpus.name} "
                f"({sum(corpus.summary()['n_utterances'].values())} clips) runs={len(configs)} "
                f"-> {out}"
            )
        )
    for note in notes:  # what was decided for the user: before the sweep, and in the report
        err.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False, soft_wrap=True)
    if args.plan_first and not plan_then_confirm(args, configs, corpus, out, console):
        console.print(f"not run; the plan is in {out}/plan.md", markup=False)
        return 0
    write_sweep_notes(out, notes)
    results = launch_sweep(
        configs, out, Console(quiet=args.quiet, width=console.width), launch, force=args.force
    )
    if results is None:  # --no-wait: the runs go on without this process
        return 0
    for note in sorted({n for r in results for n in r.notes if "RANDOM-INIT" in n}):
        err.print(f"[bold red]WARNING:[/bold red] {escape(note)}")
    # The report of the folder, exactly as `python -m bench.report OUT` renders it: the folder
    # may hold more runs than this sweep's (other strategies, an earlier sweep's).
    rendered = render(out, tolerance=args.tolerance, target=target)
    print_summary(rendered.report, console)
    changed = different_data(load_results(out))  # this sweep's runs and the folder's others
    if changed:
        err.print(f"[bold red]WARNING:[/bold red] {escape(changed)}")
    console.print(
        f"report: {rendered.markdown} and {rendered.html}  (wall {time.perf_counter() - t0:.0f} s)",
        markup=False,
    )
    return 0 if all(r.ok for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    return run_cli(
        _main, argv, interrupted="finished results are kept; rerun the same command to resume"
    )


if __name__ == "__main__":
    sys.exit(main())
