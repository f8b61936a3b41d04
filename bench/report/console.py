"""The final table in the terminal (rich), plus the recommendation and regressions."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.table import Table as RichTable
from rich.text import Text

from bench.report.lr_search import search_summary
from bench.report.model import Report


def console_table(report: Report, plain: bool = False, compact: bool = False) -> RichTable:
    """The comparison table; `plain` uses ASCII rules (CI logs, files) instead of box drawing;
    `compact` leaves out per-dimension CCC and columns nothing was measured for (narrow
    terminals); the report files always have every column."""
    t = report.table
    # Compact: per-dimension CCC and the cost to target in samples and energy (time to target
    # stays) are in the report files.
    skip = {f"ccc_{d}" for d in report.analysis.dimensions} | {
        "samples_to_target",
        "energy_to_target_j",
    }
    keep = [
        i
        for i, c in enumerate(t.columns)
        if not compact or (c.key not in skip and c.na_reason is None)
    ]
    left_out = [t.columns[i].header for i in range(len(t.columns)) if i not in keep]
    caption = (
        f"mean±sd over {report.analysis.spread}" if t.several_seeds else "one seed"
    ) + "; bold: best in column"
    if left_out:
        caption += f"; not shown here (see the report): {', '.join(left_out)}"
    table = RichTable(
        title="serbench: strategies compared",
        box=box.ASCII if plain else box.HEAVY_HEAD,
        caption=caption,
    )
    for i in keep:
        c = t.columns[i]
        table.add_column(c.header, justify="left" if c.key == "strategy" else "right")
    for row in t.rows:
        name = Text(row.strategy + "".join(f" ({b})" for b in row.badges))
        if row.ok:
            cells = [
                Text(
                    c.text.replace(" ±\u00a0", "±") + (f" ⚠ {c.flag}" if c.flag else ""),
                    style="bold green" if c.best else "",
                )
                for c in row.cells
            ]
            cells = [cells[i - 1] for i in keep[1:]]
        else:
            msg = Text("FAILED: " + "; ".join(row.errors), style="red")
            cells = [msg] + [Text("")] * (len(keep) - 2)
        table.add_row(name, *cells)
    return table


def console_summary(report: Report, plain: bool = False, compact: bool = False) -> Group:
    """Table, then the recommendation, failed runs and regressions: what a terminal user reads."""
    parts: list = [console_table(report, plain, compact)]
    parts += [Text(s, style="bold" if i == 0 else "") for i, s in enumerate(report.advice)]
    if report.lr_search is not None:
        parts.append(Text(search_summary(report.lr_search)))
    if report.plan_check is not None:
        parts += [Text(f"plan vs run: {s}") for s in report.plan_check.sentences()]
    for row in report.table.rows:
        parts += [Text(f"{row.strategy} {e}", style="red") for e in row.errors]
    if report.comparison is not None:
        regs = report.comparison.regressions
        parts.append(
            Text(
                f"{len(regs)} regression(s) against {report.comparison.baseline_dir}"
                + (": " + "; ".join(regs) if regs else ""),
                style="bold red" if regs else "green",
            )
        )
        parts += [Text(f"within noise: {n}") for n in report.comparison.noise]
        parts += [Text(f"not gated: {n}", style="yellow") for n in report.comparison.unmeasured]
    return Group(*parts)


def print_summary(report: Report, console: Console) -> None:
    """Plain ASCII when stdout is not a terminal (CI logs); compact unless the console is wide."""
    console.print(
        console_summary(report, plain=not console.is_terminal, compact=console.width < 240)
    )
