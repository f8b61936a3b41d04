"""Write a run folder's report files: report.md, index.html, results.csv and plots/."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.plan.check import check_folder
from bench.report.compare import DEFAULT_CCC_DROP, DEFAULT_SLOWDOWN, FigureLimit
from bench.report.frame import write_csv
from bench.report.html import render_html
from bench.report.markdown import render_markdown
from bench.report.model import Report, build_report
from bench.report.plots import Plot, all_plots
from bench.report.recommend import DEFAULT_TOLERANCE
from bench.report.rows import label_by_config, label_by_model
from bench.report.target import DEFAULT_TARGET, Target
from bench.result import RunResult
from bench.result.store import load_results, read_sweep_notes


@dataclass(frozen=True)
class Rendered:
    markdown: Path
    html: Path
    csv: Path
    plots: tuple[Plot, ...]
    report: Report


def _load(folder: str | Path, what: str) -> list[RunResult]:
    results = load_results(folder)
    if not results:
        raise BenchError(
            f"no result files under {Path(folder) / 'results'} ({what}); "
            f"run `python -m bench.run --out {folder}` first"
        )
    return results


def _check_threshold(name: str, value: float) -> None:
    if not value >= 0:  # also refuses NaN
        raise BenchError(f"{name} must be a number >= 0, not {value}")


def render(
    out_dir: str | Path,
    results: Sequence[RunResult] | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    compare_dir: str | Path | None = None,
    ccc_drop: float = DEFAULT_CCC_DROP,
    slowdown: float = DEFAULT_SLOWDOWN,
    limits: tuple[FigureLimit, ...] = (),
    step_summary: bool = True,
    target: Target = DEFAULT_TARGET,
) -> Rendered:
    """Render the report of the run folder `out_dir` from its results (or `results`), optionally
    against the earlier run folder `compare_dir`. Appends the markdown (without images) to
    $GITHUB_STEP_SUMMARY when that is set and `step_summary` is true."""
    for name, value in (
        ("--tolerance", tolerance),
        ("--ccc-drop", ccc_drop),
        ("--slowdown", slowdown),
    ):
        _check_threshold(name, value)
    out_dir = Path(out_dir)
    results = _load(out_dir, "this run") if results is None else list(results)
    if not results:
        raise BenchError(f"no results to report in {out_dir}")
    results = label_by_model(
        label_by_config(results)
    )  # rows per (backbone, strategy) when there are several
    earlier = _load(compare_dir, "the run to compare against") if compare_dir else None
    report = build_report(
        results,
        tolerance=tolerance,
        earlier=earlier,
        earlier_dir=str(compare_dir) if compare_dir else None,
        ccc_drop=ccc_drop,
        slowdown=slowdown,
        limits=limits,
        sweep_notes=tuple(read_sweep_notes(out_dir)),
        target=target,
    )
    report = dataclasses.replace(report, plan_check=check_folder(out_dir, results))
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        plots = tuple(
            all_plots(report.analysis, report.results, out_dir / "plots", report.lr_search)
        )
    except OSError as exc:  # a full disk fails inside matplotlib/PIL: the tables still matter
        plots = ()
        note = f"Plots were not written ({exc.strerror or exc} in {out_dir / 'plots'}); the tables are complete."
        report = dataclasses.replace(
            report,
            header=dataclasses.replace(report.header, warnings=(*report.header.warnings, note)),
        )
    md = out_dir / "report.md"
    html = out_dir / "index.html"
    csv = out_dir / "results.csv"
    try:
        md.write_text(render_markdown(report, plots), encoding="utf-8")
        html.write_text(render_html(report, plots), encoding="utf-8")
        write_csv(report.analysis.runs, str(csv))
    except OSError as exc:
        raise BenchError(
            f"the report could not be written in {out_dir} ({exc.strerror or exc}); free some "
            f"space there, then `python -m bench.report {out_dir}` renders it from the results"
        ) from exc
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(render_markdown(report, plots, images=False) + "\n")
    return Rendered(md, html, csv, plots, report)
