"""The local launcher: one run at a time on this machine, each in a fresh process
(`bench.launch.isolated`), with progress bars on a terminal and lines in a log."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bench.config import RunConfig
from bench.launch.isolated import (
    RunFn,
    outcome_line,
    planned_runs,
    run_one_isolated,
    split_finished,
    sweep_progress,
)
from bench.result import RunResult
from bench.train.worker import run_guarded


def run_sweep(
    configs: list[RunConfig],
    out_dir: Path,
    console: Console,
    force: bool = False,
    run: RunFn = run_guarded,
    run_timeout_s: float | None = None,
) -> list[RunResult]:
    """Run every config not already done (same run_id, status ok) unless `force`; return all
    results. A run still going after `run_timeout_s` is killed (status timeout)."""
    results: list[RunResult] = []
    live = console.is_terminal and not console.quiet
    with sweep_progress(console) as bar:
        overall = bar.add_task("sweep", total=len(configs))
        runs = planned_runs(configs, out_dir)
        done, _ = split_finished(runs, force, console)
        bar.advance(overall, len(done))
        for i, (cfg, path, label) in enumerate((r.cfg, r.path, r.label) for r in runs):
            if i in done:
                results.append(done[i])
                continue
            current = bar.add_task(label, total=None)

            def on_event(e: dict, current=current, label=label) -> None:
                if e.get("phase") == "train":
                    total = e["epochs"] * e["steps"]
                    bar.update(
                        current,
                        total=total,
                        completed=e["epoch"] * e["steps"] + e["step"],
                        description=f"{label} epoch {e['epoch'] + 1}/{e['epochs']}",
                    )
                elif e.get("phase") == "cache":
                    bar.update(current, description=f"{label} building cache")
                elif e.get("phase") == "val" and not live:
                    console.print(
                        f"  {label} epoch {e['epoch'] + 1}/{e['epochs']}: "
                        f"val CCC {e['val_ccc_mean']:.3f}",
                        markup=False,
                    )

            result = run_one_isolated(cfg, path, on_event, run, timeout_s=run_timeout_s)
            bar.remove_task(current)
            bar.advance(overall)
            console.print(outcome_line(label, result))
            results.append(result)
    return results
