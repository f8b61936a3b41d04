"""`make gpu-check`'s machinery on a CPU: steps under time limits (a planted hang, a failure, a
skip), the summary from results, and the archive (no `+` in its names). The real rehearsal is
`python -m bench.cli.gpu_check` on a machine without CUDA (about 100 s)."""

from __future__ import annotations

import copy
import os
import sys
import tarfile
import time

import pytest

from bench.cli import gpu_check
from bench.launch.steps import Step, run_steps
from tests.conftest import fixture_results, write_run

PY = sys.executable
# A step that starts a child and then hangs: the limit must end both.
HANG = (
    "import subprocess, sys, time\n"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print('child', p.pid, flush=True)\n"
    "time.sleep(120)\n"
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_every_step_runs_under_its_own_limit_whatever_the_others_did(tmp_path):
    steps = [
        Step("hang", (PY, "-c", HANG), 1.5),
        Step("fails", (PY, "-c", "print('something broke'); raise SystemExit(3)"), 30),
        Step("graphs", (), 30, skip="no CUDA device: +graph replays CUDA graphs"),
        Step("fine", (PY, "-c", "print('ok')"), 30),
    ]
    t0 = time.monotonic()
    hang, fails, graphs, fine = run_steps(steps, tmp_path, dict(os.environ), budget_s=60)
    assert time.monotonic() - t0 < 30
    assert hang.status == "timeout" and "1.5" not in hang.line() and "2 s" in hang.line()
    child = int(hang.log.read_text().split("child ")[1].split()[0])
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the hung step's child outlived its limit"
    assert "killed after its time limit" in hang.log.read_text()
    assert (fails.status, fails.returncode) == ("failed", 3)
    assert fails.detail == "exit 3: something broke"
    assert graphs.status == "skipped" and graphs.log is None and "no CUDA" in graphs.line()
    assert fine.status == "ok" and fine.log.read_text().splitlines()[-1] == "ok"


def test_the_total_budget_shortens_and_then_skips_the_last_steps(tmp_path):
    steps = [Step("slow", (PY, "-c", "import time; time.sleep(60)"), 30)]
    steps.append(Step("late", (PY, "-c", "print(1)"), 30))
    slow, late = run_steps(steps, tmp_path, dict(os.environ), budget_s=1.0)
    assert slow.status == "timeout" and slow.limit_s <= 1.0
    assert late.status == "skipped" and "budget was spent" in late.detail


def _check_folder(work):
    """A work folder as the GPU check leaves it: a sweep with partial3 and partial3+amp."""
    results = [r for r in fixture_results() if r["seed"] == 0]
    amp = copy.deepcopy(next(r for r in results if r["strategy"] == "partial3"))
    amp["strategy"] = "partial3+amp"
    thr = amp["efficiency"]  # schema 1: the figures flat in efficiency
    thr["train_samples_per_s"] *= 1.5
    write_run(work / "sweep", [*results, amp])
    (work / "sweep" / "logs").mkdir()
    (work / "sweep" / "logs" / "partial3+amp__seed0.log").write_text("a run's log\n")
    return thr["train_samples_per_s"] / 1.5


def test_the_check_writes_a_summary_and_one_archive_without_plus_in_names(tmp_path, monkeypatch):
    work, out = tmp_path / "work", tmp_path / "out"
    _check_folder(work)
    pytest_log = (
        "SKIPPED [2] tests/gpu/test_gpu.py:122: needs a CUDA device\\n"
        "PASSED tests/gpu/test_gpu.py::test_graph_replay_computes_what_the_eager_prefix_computes\\n"
        "1 passed, 2 skipped in 0.3s"
    )

    def fake_steps(py, work_dir, why):
        return [
            Step(
                "sweep",
                (PY, "-m", "bench.run", "--strategies", "full,partial3,partial3+amp,dora"),
                30,
            ),
            Step("graph-sweep", (), 30, skip=f"{why}: +graph replays CUDA graphs"),
            Step(
                "lengths", (PY, "-c", "print('top kernels: conv 1.2 ms'); raise SystemExit(1)"), 30
            ),
            Step("gpu-tests", (PY, "-c", f"print('{pytest_log}')"), 30),
        ]

    monkeypatch.setattr(gpu_check, "rehearsal_steps", fake_steps)
    # The sweep step itself: a stand-in that leaves the results above in place.
    monkeypatch.setattr(gpu_check, "run_steps", _stand_in_sweep(gpu_check.run_steps))
    assert gpu_check.main(["--out", str(out), "--work", str(work), "--rehearse"]) == 1
    summary = (out / "summary.txt").read_text()
    assert "CPU rehearsal (--rehearse)" in summary
    assert "skipped: graph-sweep" in summary and "+graph replays CUDA graphs" in summary
    assert "lengths        failed" in summary and "top kernels: conv 1.2 ms" in summary
    table = summary.split("== sweep")[1].split("== speed ratios")[0]
    rows = {ln.split()[0]: ln.split() for ln in table.splitlines() if ln.startswith("partial3")}
    assert rows["partial3"][1] == "ok" and rows["partial3+amp"][1] == "ok"
    assert "partial3+amp / partial3: 1.50x" in summary
    assert "full+amp / full: not measured (full+amp: no steady samples/s)" in summary
    assert "no result from the sweep step for dora" in summary
    assert any(
        ln.startswith("full ") and " e0 " in ln and " e1 " in ln for ln in summary.splitlines()
    )
    assert "PASSED tests/gpu/test_gpu.py::test_graph_replay" in summary.split("== graph replay")[1]
    assert "1 passed, 2 skipped" in summary.split("== GPU tests ==")[1]
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        names = tar.getnames()
        assert "gpu-check/summary.txt" in names
        assert "gpu-check/sweep/results/partial3_amp__seed0.json" in names
        assert "gpu-check/sweep/logs/partial3_amp__seed0.log" in names
        assert "gpu-check/steps/lengths.log" in names
        assert not [n for n in names if "+" in n]
        assert tar.extractfile("gpu-check/summary.txt").read().decode() == summary
    assert sorted(p.name for p in out.iterdir()) == ["gpu-check.tar.gz", "summary.txt"]


def _stand_in_sweep(real):
    """run_steps with the sweep step answered by `true`: its results are already there."""

    def run(steps, *args):
        swapped = [
            Step(s.name, (PY, "-c", "print('sweep done')"), s.limit_s) if s.name == "sweep" else s
            for s in steps
        ]
        return real(swapped, *args)

    return run


def test_out_inside_work_is_refused(tmp_path):
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="must lie outside --work"):
        gpu_check._main(["--out", str(tmp_path / "w" / "o"), "--work", str(tmp_path / "w")])


def test_the_gpu_plan_fits_the_window_and_measures_full_amp(tmp_path):
    steps = gpu_check.gpu_steps(PY, tmp_path)
    assert sum(s.limit_s for s in steps) <= gpu_check.BUDGET_S <= 8 * 60
    argv = " ".join(a for s in steps for a in s.argv)
    assert "full+amp" in argv and "--run-timeout" in argv
    tests = next(s for s in steps if s.name == "gpu-tests").argv
    assert "addopts=" in tests and "no:benchmark" in tests  # runs without pytest-benchmark
    rehearsal = gpu_check.rehearsal_steps(PY, tmp_path, "no CUDA device")
    assert sum(s.limit_s for s in rehearsal if s.skip is None) <= gpu_check.REHEARSAL_BUDGET_S < 120
