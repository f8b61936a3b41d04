"""Build the whole report (as data) from `RunResult`s; the renderers only format it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bench.plan.check import PlanReport
from bench.report.analysis import Analysis, analyse
from bench.report.compare import (
    DEFAULT_CCC_DROP,
    DEFAULT_SLOWDOWN,
    Comparison,
    FigureLimit,
    compare,
)
from bench.report.evidence import Evidence, warnings, weigh
from bench.report.header import Header, build_header
from bench.report.lr_search import LrSearch, search
from bench.report.recommend import DEFAULT_TOLERANCE, Recommendation, recommend, sentences
from bench.report.rows import label_by_config, label_by_model
from bench.report.table import Table, build_table
from bench.report.target import DEFAULT_TARGET, Target
from bench.result import RunResult

DEFAULT_FAR_BELOW = 0.2  # a run this far under the others' median CCC (same seed) is degenerate


@dataclass(frozen=True)
class Report:
    header: Header
    analysis: Analysis
    table: Table
    recommendation: Recommendation
    advice: tuple[str, ...]  # the recommendation in sentences
    comparison: Comparison | None = None
    evidence: Evidence | None = None
    lr_search: LrSearch | None = None  # when the runs were a --lrs grid
    results: tuple[RunResult, ...] = ()  # the runs the report compares (chosen rates only)
    plan_check: PlanReport | None = None  # the folder's plan.json against its runs


def build_report(
    results: Sequence[RunResult],
    tolerance: float = DEFAULT_TOLERANCE,
    earlier: Sequence[RunResult] | None = None,
    earlier_dir: str | None = None,
    ccc_drop: float = DEFAULT_CCC_DROP,
    slowdown: float = DEFAULT_SLOWDOWN,
    far_below: float = DEFAULT_FAR_BELOW,
    limits: tuple[FigureLimit, ...] = (),
    sweep_notes: tuple[str, ...] = (),
    target: Target = DEFAULT_TARGET,
) -> Report:
    """Everything the report says, computed from stored results (and an earlier run's, for
    `--compare`); `sweep_notes`: what the sweep decided that the results cannot say."""
    every = label_by_model(label_by_config(results))
    # A learning-rate search: everything below compares each strategy at its chosen rate.
    lr_search, results = search(every)
    analysis = analyse(results, far_below=far_below, target=target)
    evidence = weigh(analysis, results)
    header = build_header(every, analysis, sweep_notes)
    header = replace(header, warnings=(*warnings(evidence), *header.warnings))
    comparison = None
    if earlier is not None:
        _, earlier_chosen = search(label_by_model(label_by_config(earlier)))
        comparison = compare(
            analysis,
            analyse(earlier_chosen, far_below=far_below, target=target),
            earlier_dir or "earlier run",
            ccc_drop,
            slowdown,
            limits,
        )
    rec = recommend(analysis, tolerance, evidence)
    table = build_table(analysis, header.notes, comparison, evidence)
    if lr_search is not None:  # each row names the rate it was chosen at
        table = replace(
            table,
            rows=tuple(
                replace(row, badges=(*row.badges, lr_search.describe(row.strategy)))
                for row in table.rows
            ),
        )
    return Report(
        header,
        analysis,
        table,
        rec,
        tuple(sentences(rec, analysis, evidence)),
        comparison,
        evidence,
        lr_search,
        tuple(results),
    )
