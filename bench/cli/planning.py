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


def plan_corpus(c0: RunConfig, msp_like_clips: int | None) -> Corpus | PlanCorpus:
    """What to plan over: the run's corpus (from its audio index), or MSP-like durations alone."""
    if msp_like_clips is not None:
        return msp_like(msp_like_clips, c0.train.max_seconds)
    return load_dataset(c0.data, c0.seed)


def run_plan(
    configs: list[RunConfig],
    corpus: Corpus | PlanCorpus,
    out: Path,
    console: Console,
    points: int = 5,
    seconds: float = 1.0,
) -> Plan:
    """Calibrate, project, print and write the plan of `configs` into `out`. `corpus`: the
    corpus itself (its lengths after the run's crop are planned, and the prefix stores already
    built for it are not counted again), or durations alone (--msp-like: no audio, no stores)."""
    audio = corpus if isinstance(corpus, Corpus) else None
    lengths = corpus if audio is None else from_corpus(audio, configs[0].train.max_seconds)
    if points < 1:
        raise BenchError(f"--calibration-points must be >= 1, not {points}")
    if seconds <= 0:
        raise BenchError(f"--calibration-seconds must be > 0, not {seconds:g}")
    device = pick_device(configs[0].device)
    plan = make_plan(
        configs,
        lengths,
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
