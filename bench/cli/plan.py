"""`python -m bench.plan`: what a sweep will cost, from a few minutes of calibration.

    python -m bench.plan --strategies full,partial3+amp+cache --profile study \
        --dataset msp-podcast --data-root /data/MSP-PODCAST
    python -m bench.plan --profile study --msp-like 110000 --model small-w2v2

Takes every flag of `python -m bench.run` (the same configs are planned), plus the few below.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.cli.args import (
    add_plan_arguments,
    build_run_parser,
    configs_from_args,
    consoles,
    list_strategies_text,
)
from bench.cli.planning import plan_corpus, run_plan
from bench.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    ap = build_run_parser()
    ap.prog = "python -m bench.plan"
    ap.description = __doc__.splitlines()[0].removeprefix("`python -m bench.plan`: ")
    add_plan_arguments(ap)
    return ap


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    console, _ = consoles()
    if args.list_strategies:
        print(list_strategies_text())
        return 0
    t0 = time.perf_counter()
    configs, out, _ = configs_from_args(args)
    corpus = plan_corpus(configs[0], args.msp_like)
    run_plan(configs, corpus, out, console, args.calibration_points, args.calibration_seconds)
    console.print(f"(wall {time.perf_counter() - t0:.0f} s)", highlight=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
