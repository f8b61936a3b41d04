"""A full disk stops the sweep cleanly, naming the folder and the space needed; the report
degrades instead of crashing; results are as readable as the other outputs; run output with
rich markup in it is printed as text."""

from __future__ import annotations

import errno
import os
import stat
import sys

import pytest
from rich.console import Console

from bench.errors import BenchError
from bench.launch.isolated import outcome_line, run_one_isolated
from bench.report import render
from bench.result.start import started_result
from bench.result.store import read_result, result_path, write_result
from tests.conftest import fixture_results, write_run
from tests.test_sweep import _exit_one


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_a_clear_error_naming_the_folder_and_the_space(
    tiny_config, tmp_path, monkeypatch
):
    path = result_path(tmp_path, "partial2", 0)
    monkeypatch.setattr("bench.result.store.os.fsync", _no_space)
    with pytest.raises(BenchError) as err:
        write_result(path, started_result(tiny_config))
    msg = str(err.value)
    assert f"in {path.parent}" in msg and "KiB needed" in msg and "MiB free" in msg
    assert "rerun the same command" in msg
    assert list(path.parent.iterdir()) == []  # no temporary file left behind


def test_a_run_whose_result_cannot_be_written_stops_the_sweep_and_keeps_the_rest(
    tiny_config, tmp_path, monkeypatch
):
    finished = result_path(tmp_path, "head", 0)
    write_result(finished, started_result(tiny_config).replace(status="ok"))
    monkeypatch.setattr("bench.result.store.os.fsync", _no_space)
    path = result_path(tmp_path, "partial2", 0)
    with pytest.raises(
        BenchError, match=r"no space left to write the result partial2__seed0\.json"
    ):
        run_one_isolated(tiny_config, path, lambda e: None, target=_exit_one)
    monkeypatch.undo()
    assert read_result(finished).status == "ok"


def test_the_report_degrades_without_plots_when_they_cannot_be_written(tmp_path, monkeypatch):
    folder = write_run(tmp_path, fixture_results())
    monkeypatch.setattr(sys.modules["bench.report.render"], "all_plots", _no_space)
    rendered = render(folder, step_summary=False)
    assert rendered.plots == ()
    assert "Plots were not written (No space left on device" in rendered.markdown.read_text()


def test_the_report_files_that_cannot_be_written_are_a_clear_error(tmp_path, monkeypatch):
    folder = write_run(tmp_path, fixture_results())
    monkeypatch.setattr(sys.modules["bench.report.render"], "render_html", _no_space)
    with pytest.raises(BenchError, match=r"could not be written in .*python -m bench.report"):
        render(folder, step_summary=False)


def test_results_are_written_readable_by_others(tiny_config, tmp_path):
    old = os.umask(0o022)
    try:
        path = result_path(tmp_path, "partial2", 0)
        write_result(path, started_result(tiny_config))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_run_output_with_markup_is_printed_as_text(tiny_config):
    console = Console(record=True, width=300)
    oom = "[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: not enough memory"
    failed = started_result(tiny_config).replace(status="oom", error=oom)
    console.print(outcome_line("lora[/b] seed 0", failed))
    assert f"oom lora[/b] seed 0: {oom}" in console.export_text()
