"""The report header's date range (from the first run's start) and its seed count ("1 seed");
the data messages' tests are in test_adapters_csv.py."""

from __future__ import annotations

from bench.report import build_report
from tests.conftest import fixture_results, typed


def test_the_header_dates_run_from_the_first_start_and_counts_one_seed():
    results = [r for r in typed(fixture_results()) if r.seed == 0]
    results = [
        r.replace(
            started_at=f"2026-01-0{i + 2}T10:00:00+00:00",
            finished_at=f"2026-01-0{i + 2}T11:00:00+00:00",
        )
        for i, r in enumerate(results)
    ]
    facts = dict(build_report(results).header.facts)
    last = len(results) + 1
    assert facts["Date"] == f"2026-01-02T10:00:00+00:00 to 2026-01-0{last}T11:00:00+00:00"
    assert facts["Seeds"] == "0 (1 seed)"
