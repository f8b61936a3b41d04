"""report.md: GitHub-flavoured markdown. Every data string is escaped, so a strategy or corpus
name can neither break a table nor inject HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from bench.report.lr_search import SEARCH_HEAD, search_rows, search_summary
from bench.report.model import Report
from bench.report.plots import Plot
from bench.report.table import Cell, Row

# `[` alone is enough to defuse links and images; `]` and `!` stay readable.
_MD_SPECIAL = re.compile(r"([\\`*_\[|#~])")


def md_escape(s: object) -> str:
    """Literal text in GFM: HTML metacharacters as entities, markdown punctuation backslashed,
    newlines flattened (a newline would end a table row)."""
    text = html.escape(str(s), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.splitlines())


def _cell(c: Cell) -> str:
    text = md_escape(c.text)
    if c.best:
        text = f"**{text}**"
    if c.flag:
        text += f" ⚠ {md_escape(c.flag)}"
    return text


def _name(row: Row) -> str:
    badges = "".join(f" _({b})_" for b in row.badges)
    return f"{md_escape(row.strategy)}{badges}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], align: str = "---:") -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|:---|" + "|".join(align for _ in head[1:]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def render_markdown(report: Report, plots: Sequence[Plot], images: bool = True) -> str:
    """The report as markdown; `images=False` leaves out the plot images (for the CI summary,
    where relative image paths do not resolve)."""
    h, t = report.header, report.table
    lines = [f"# serbench report: {md_escape(h.profile)}", ""]
    lines += [f"- **{k}**: {md_escape(v)}" for k, v in h.facts]
    lines.append("")
    for w in h.warnings:
        lines += [f"> **Warning:** {md_escape(w)}", ">"]
    if h.warnings:
        lines[-1] = ""

    lines += ["## Recommendation", ""]
    lines += [f"- {md_escape(s)}" for s in report.advice] + [""]

    spread = report.analysis.spread
    lines += ["## Strategies compared", ""]
    head = [md_escape(c.header) + (" ¹" if c.na_reason else "") for c in t.columns]
    body = []
    for row in t.rows:
        if row.ok:
            body.append([_name(row)] + [_cell(c) for c in row.cells])
        else:
            err = md_escape("; ".join(row.errors) or "failed")
            body.append([_name(row), f"**FAILED**: {err}"] + [""] * (len(head) - 2))
    lines += _table(head, body)
    lines.append("")
    over = f"mean ± sd over {spread}; " if t.several_seeds else "one seed; "
    lines.append(
        f"_{over}**bold**: best in column; ⚠: a regression against the earlier run, or a figure that cannot be taken at face value._"
    )
    for reason, headers in t.not_measured():
        lines += ["", f"¹ n/a in {md_escape(', '.join(headers))}: {md_escape(reason)}."]
    partial = [(r.strategy, e) for r in t.rows if r.ok for e in r.errors]
    if partial:
        lines += ["", "Failed runs of otherwise successful strategies:", ""]
        lines += [f"- {md_escape(s)} {md_escape(e)}" for s, e in partial]
    lines.append("")

    if report.lr_search is not None:
        lines += ["### Learning-rate search", "", md_escape(search_summary(report.lr_search)), ""]
        rows = [[md_escape(c) for c in r] for r in search_rows(report.lr_search)]
        lines += [*_table(list(SEARCH_HEAD), rows), ""]
    if report.plan_check is not None:
        lines += ["### Plan against the run", ""]
        lines += [f"- {md_escape(s)}" for s in report.plan_check.sentences()] + [""]

    if t.several_seeds:
        lines += [f"### 95% confidence intervals (Student t, {spread})", ""]
        figures = {m.key for m in report.analysis.metrics}
        cols = [(i, c) for i, c in enumerate(t.columns[1:]) if c.key in figures and not c.na_reason]
        rows = [
            [_name(r)]
            + [
                md_escape(
                    r.cells[i].ci or (r.cells[i].text if r.cells[i].sort is None else "no spread")
                )
                for i, _ in cols
            ]
            for r in t.rows
            if r.ok
        ]
        lines += _table(["Strategy"] + [md_escape(c.header) for _, c in cols], rows)
        lines.append("")

    lines += [f"### Test CCC vs {report.analysis.baseline}, paired bootstrap", ""]
    rows = []
    for s in report.analysis.strategies:
        for p in s.paired:
            if p.result is None:
                rows.append([md_escape(s.name), str(p.replicate), "n/a", "", "", md_escape(p.note)])
                continue
            b = p.result
            rows.append(
                [
                    md_escape(s.name),
                    str(p.replicate),
                    f"{b.delta:+.3f}",
                    f"[{b.ci_low:+.3f}, {b.ci_high:+.3f}]",
                    f"{b.p_value:.3f}",
                    "yes" if b.significant else "no",
                ]
            )
    if rows:
        lines += _table(["Strategy", "run", "ΔCCC mean", "95% interval", "p", "significant"], rows)
        lines += [
            "",
            "_Resampling test utterances with replacement (2000 resamples, the same resample for "
            "both strategies); significant when the interval excludes 0._",
        ]
    else:
        lines.append("_No strategy besides the baseline finished._")
    lines.append("")

    if report.comparison is not None:
        c = report.comparison
        lines += [f"### Against the earlier run in {md_escape(c.baseline_dir)}", ""]
        regs = c.regressions
        lines.append(
            f"**{len(regs)} regression(s)** beyond a CCC drop of {c.ccc_drop:g} or a slow-down of "
            f"{100 * c.slowdown:g}%:"
            if regs
            else "No regressions beyond the thresholds "
            f"(CCC drop {c.ccc_drop:g}, slow-down {100 * c.slowdown:g}%)."
        )
        lines += [f"- {md_escape(r)}" for r in regs]
        lines += [f"- within noise, not a regression: {md_escape(n)}" for n in c.noise]
        lines += [f"- not gated: {md_escape(n)}" for n in c.unmeasured]
        lines += [
            f"- {md_escape(ch.strategy)}: {md_escape(ch.note)}" for ch in c.changes if ch.note
        ]
        lines.append("")

    lines += ["### Columns", ""]
    lines += [f"- **{md_escape(c.header)}**: {md_escape(c.help)}" for c in t.columns[1:]]
    lines.append("")

    if images:
        lines += ["## Plots", ""]
        for p in plots:
            lines += [
                f"![{md_escape(p.title)}](plots/{p.png.name})",
                "",
                f"_{md_escape(p.caption)}_",
                "",
            ]
    if h.notes:
        lines += ["## Run notes", ""] + [f"- {md_escape(n)}" for n in h.notes] + [""]
    lines.append("_Per-run figures: `results.csv`; raw results: `results/*.json`._")
    return "\n".join(lines) + "\n"
