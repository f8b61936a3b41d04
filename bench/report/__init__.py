"""Reports from stored results: markdown, self-contained HTML, CSV, plots and the console table.

`python -m bench.report RUN_DIR` re-renders from the stored JSON files without training.
"""

from __future__ import annotations

from bench.report.console import console_summary, console_table, print_summary
from bench.report.model import Report, build_report
from bench.report.render import Rendered, render

__all__ = [
    "Rendered",
    "Report",
    "build_report",
    "console_summary",
    "console_table",
    "print_summary",
    "render",
]
