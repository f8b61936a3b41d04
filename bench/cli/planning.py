"""Planning as the commands do it: calibrate, project, print and write a plan
(`python -m bench.plan`, and `python -m bench.run --plan-first` before it runs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

from bench.config import RunConfig
from bench.data.datasets import Corpus, load_dataset
from bench.errors import BenchError
from bench.meter.environment import pick_device
from bench.plan.build import Plan, make_plan
from bench.plan.corpus import PlanCorpus, from_corpus, msp_like
from bench.plan.render import print_plan, write_plan


def plan_corpus(c0: RunConfig, msp_like_clips: int | None) -> tuple[PlanCorpus, Corpus | None]:
    """The corpus' lengths after the run's crop, from the audio index (with the corpus itself,
    for the prefix stores it may already have), or drawn MSP-like (no audio: None)."""
    if msp_like_clips is not None:
        return msp_like(msp_like_clips, c0.train.max_seconds), None
    corpus = load_dataset(c0.data, c0.seed)
    return from_corpus(corpus, c0.train.max_seconds), corpus


def run_plan(
    configs: list[RunConfig],
    corpus: PlanCorpus,
    out: Path,
    console: Console,
    points: int = 5,
    seconds: float = 1.0,
    audio: Corpus | None = None,
) -> Plan:
    """Calibrate, project, print and write the plan of `configs` into `out` (`audio`: the
    corpus, where there is one, so that stores already built are not counted again)."""
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
        audio=audio,
    )
    print_plan(plan, console)
    js, md, plot = write_plan(plan, out)
    console.print(f"plan: {js} and {md}" + (f" and {plot}" if plot else ""), markup=False)
    return plan


def confirm(console: Console, yes: bool) -> bool:
    """Ask whether to run; yes when --yes, and without asking where nobody can answer (stdin is
    not a terminal, or CI is set)."""
    if yes or not sys.stdin.isatty() or os.environ.get("CI"):
        return True
    # `[y/N]` escaped: rich reads square brackets as markup and would print "run it? "
    answer = console.input(r"run it? \[y/N] ").strip().lower()
    return answer in ("y", "yes")
