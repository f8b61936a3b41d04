"""`python -m bench.report RUN_DIR [--compare EARLIER_DIR] [--fail-on-regression]`."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from bench.errors import BenchError, run_cli
from bench.report.compare import DEFAULT_CCC_DROP, DEFAULT_SLOWDOWN, FigureLimit
from bench.report.console import print_summary
from bench.report.recommend import DEFAULT_TOLERANCE
from bench.report.render import render
from bench.report.target import TARGET_CCC_HELP, target_from


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench.report",
        description="Re-render a run folder's report (report.md, index.html, results.csv, "
        "plots/) from its stored results, without training.",
    )
    ap.add_argument("results_dir", help="a run folder holding results/*.json (e.g. reports/quick)")
    ap.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="recommend the fastest strategy whose mean CCC is within this of the best "
        f"(default {DEFAULT_TOLERANCE})",
    )
    ap.add_argument(
        "--compare",
        metavar="BASELINE_DIR",
        default=None,
        help="an earlier run folder: adds change columns and flags regressions",
    )
    ap.add_argument(
        "--ccc-drop",
        type=float,
        default=DEFAULT_CCC_DROP,
        help=f"mean-CCC drop that counts as a regression (default {DEFAULT_CCC_DROP})",
    )
    ap.add_argument(
        "--slowdown",
        type=float,
        default=DEFAULT_SLOWDOWN,
        help="fractional loss of training samples/s that counts as a regression "
        f"(default {DEFAULT_SLOWDOWN})",
    )
    ap.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit with code 1 when --compare finds a regression (for CI)",
    )
    ap.add_argument(
        "--fail-on",
        metavar="FIGURE:THRESHOLD%",
        action="append",
        default=[],
        help="with --compare: exit 1 when a strategy's FIGURE (any declared figure's key or label, "
        "e.g. peak_vram_alloc_mib or harness_efficiency) got worse by more than THRESHOLD%% in "
        "its own direction; repeatable",
    )
    ap.add_argument("--target-ccc", type=float, default=None, help=TARGET_CCC_HELP)
    ap.add_argument("--quiet", action="store_true", help="print only the paths written")
    return ap


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    if (args.fail_on_regression or args.fail_on) and not args.compare:
        flag = "--fail-on-regression" if args.fail_on_regression else "--fail-on"
        raise BenchError(f"{flag} needs --compare BASELINE_DIR")
    limits = tuple(FigureLimit.parse(t) for t in args.fail_on)
    target = target_from(args.target_ccc)
    out = render(
        args.results_dir,
        tolerance=args.tolerance,
        compare_dir=args.compare,
        ccc_drop=args.ccc_drop,
        slowdown=args.slowdown,
        limits=limits,
        target=target,
    )
    if not args.quiet:
        print_summary(out.report, console)
    print(f"wrote {out.markdown}, {out.html} and {out.csv}")
    cmp = out.report.comparison
    if cmp is not None:
        for n in cmp.unmeasured:
            print(f"not gated: {n}", file=sys.stderr)
        if cmp.ungated:
            # A gate on a figure no compared run measured would pass on nothing.
            raise BenchError(
                f"--fail-on {', '.join(cmp.ungated)}: not measured for any strategy in both "
                f"{args.results_dir} and {args.compare} (GPU memory and energy on a CPU, for "
                "instance): nothing to gate on; drop the limit or compare runs that measure it"
            )
    # --fail-on-regression: any regression; --fail-on alone: only its own limits.
    regressions = (
        [] if cmp is None else cmp.regressions if args.fail_on_regression else cmp.limit_violations
    )
    if regressions:
        print(f"{len(regressions)} regression(s): failing as asked", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)
