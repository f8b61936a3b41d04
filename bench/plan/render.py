"""A plan on the console (rich table), as plan.json and plan.md, and, where earlier results of
the same corpus exist in the run folder, as a plot of projected hours against their CCC."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.plan.build import Plan
from bench.plan.project import Figure
from bench.result.store import load_results


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def show(f: Figure | None) -> str:
    """A figure with its bound, or 'n/a' (the reason is in plan.md and plan.json)."""
    if f is None:
        return "-"
    if f.value is None:
        return "n/a"
    if f.unit == "s":
        text = duration(f.value)
        return text if not f.error else f"{text} ± {duration(f.error)}"
    if f.unit == "GiB":
        return f"{f.value:.2f} GiB" if f.value >= 1 else f"{f.value * 1024:.1f} MiB"
    if f.unit == "MiB":
        return f"{f.value:.0f} MiB"
    if f.unit == "J":
        return f"{f.value / 1000:.1f} kJ" + (f" ± {f.error / 1000:.1f}" if f.error else "")
    return f"{f.value:g} {f.unit}"


COLUMNS = (
    "strategy",
    "prec",
    "steps/epoch",
    "epoch (train)",
    "val",
    "cache build",
    "store",
    "peak GPU mem",
    "energy/epoch",
    "total",
)


def rows(plan: Plan) -> list[list[str]]:
    out = []
    for s in plan.strategies:
        store = "-" if s.store is None else f"{show(s.store)} ({s.store_place})"
        mem = show(s.peak_memory)
        if s.fits is False:
            mem += f" (does not fit; batch <= {s.max_batch})"
        elif s.fits and s.max_batch is not None:
            mem += f" (fits; batch <= {s.max_batch})"
        out.append(
            [
                s.strategy,
                s.precision,
                str(s.steps_per_epoch),
                show(s.epoch_s),
                show(s.val_s),
                # A build counted nowhere in the sweep (built already, or by an earlier run of
                # the sweep sharing the store) is not a cost of this row.
                "-"
                if s.cache_build_s is None
                else show(s.cache_build_s)
                if s.cache_builds
                else "reused",
                store,
                mem,
                show(s.energy_per_epoch),
                show(s.total_s),
            ]
        )
    return out


def header(plan: Plan) -> str:
    c = plan.corpus
    clips = c.to_dict()["clips"]
    return (
        f"plan: profile {plan.profile}, model {plan.model}, device {plan.device}; corpus "
        f"{c.name} ({sum(clips.values())} clips, {c.hours:.1f} h; train {clips['train']}, "
        f"val {clips['val']}, test {clips['test']}); batch {plan.batch_size}, "
        f"{plan.epochs} epochs x {len(plan.seeds)} seed(s); {len(plan.grid_lengths)} padded "
        f"lengths; calibration took {plan.calibration_wall_s:.0f} s"
    )


def print_plan(plan: Plan, console: Console) -> None:
    table = Table(title=header(plan), title_justify="left")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("strategy", "prec") else "right")
    for r in rows(plan):
        table.add_row(*r)
    console.print(table)
    total = plan.total_s()
    console.print(f"all runs: {show(total)}", highlight=False)
    for s in plan.strategies:
        if s.peak_memory.value is None:
            console.print(f"peak GPU memory: {s.peak_memory.method}", highlight=False)
            break
    for s in plan.strategies:
        if s.energy_per_epoch.value is None:
            console.print(f"energy: {s.energy_per_epoch.method}", highlight=False)
            break
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}", highlight=False, soft_wrap=True)


def markdown(plan: Plan, plot: Path | None) -> str:
    lines = [f"# Plan: {plan.profile} on {plan.corpus.name}", "", header(plan) + ".", ""]
    lines += [f"Corpus: {plan.corpus.source}.", ""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(plan)]
    lines += ["", f"All runs: {show(plan.total_s())}.", ""]
    lines += [f"**Warning**: {w}." for w in plan.warnings] + ([""] if plan.warnings else [])
    lines += ["## How each figure was obtained", ""]
    names = {
        "epoch_s": "epoch (train)",
        "val_s": "validation",
        "test_s": "test",
        "first_visits_s": "first visits",
        "setup_s": "setup",
        "cache_build_s": "cache build",
        "store": "store size",
        "peak_memory": "peak GPU memory",
        "energy_per_epoch": "energy per epoch",
        "total_s": "total",
    }
    for s in plan.strategies:
        lines += [f"### {s.strategy}", ""]
        for attr, label in names.items():
            f = getattr(s, attr)
            if f is not None:
                bound = "" if f.error is None or f.value is None else f" (± {f.error:.3g} {f.unit})"
                lines.append(f"- **{label}**: {show(f)}{bound}: {f.method}")
        lines.append("")
    if plot is not None:
        lines += [f"![projected hours vs CCC]({plot.name})", ""]
    return "\n".join(lines)


def earlier_ccc(out: Path, corpus_name: str) -> dict[str, float]:
    """Mean test CCC per strategy of earlier ok results of the same corpus in `out`."""
    by: dict[str, list[float]] = {}
    for r in load_results(out) if out.exists() else []:
        if not r.ok or r.data is None or r.data.name != corpus_name:
            continue
        ccc = r.metrics.ccc_mean if r.metrics else None
        if ccc is not None:
            by.setdefault(r.strategy, []).append(ccc)
    return {k: sum(v) / len(v) for k, v in by.items()}


def hours_vs_ccc(plan: Plan, ccc: dict[str, float], path: Path) -> Path | None:
    """Projected hours (every seed) against earlier CCC; None when no strategy has both."""
    pts = [
        (s.strategy, s.total_s.value / 3600, (s.total_s.error or 0) / 3600, ccc[s.strategy])
        for s in plan.strategies
        if s.strategy in ccc and s.total_s.value is not None
    ]
    if not pts:
        return None
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for name, h, err, c in pts:
        ax.errorbar([h], [c], xerr=[err], fmt="o", capsize=3)
        ax.annotate(name, (h, c), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel(f"projected hours ({plan.epochs} epochs x {len(plan.seeds)} seed(s))")
    ax.set_ylabel("mean test CCC (earlier results, same corpus)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    return path


def write_plan(plan: Plan, out: Path) -> tuple[Path, Path, Path | None]:
    """plan.json, plan.md and, where earlier results allow, plan_hours_vs_ccc.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    plot = hours_vs_ccc(plan, earlier_ccc(out, plan.corpus.name), out / "plan_hours_vs_ccc.png")
    js, md = out / "plan.json", out / "plan.md"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(plan.to_dict(), indent=1, allow_nan=False))
    tmp.replace(js)
    md.write_text(markdown(plan, plot))
    return js, md, plot
