"""Isolation and faults: a failing run becomes a result and the sweep goes on; Ctrl-C; resume."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from rich.console import Console

from bench.launch.isolated import interrupted_result
from bench.launch.local import run_sweep
from bench.result.store import read_result, result_path, write_result
from bench.train.worker import run_guarded


def test_a_failing_run_becomes_a_result_and_the_sweep_goes_on(tiny_config, tmp_path):
    tiny = tiny_config.with_train(max_epochs=1)
    bad = dataclasses.replace(tiny, strategy="partial1").with_data(
        dataset="csv", root=str(tmp_path / "missing.csv")
    )
    good = dataclasses.replace(tiny, strategy="partial2")
    results = run_sweep([bad, good], tmp_path / "out", Console(quiet=True))
    assert [r.status for r in results] == ["failed", "ok"]
    assert "missing.csv" in results[0].error and "does not exist" in results[0].error
    assert results[0].efficiency.memory.peak_rss_mib > 0
    assert read_result(result_path(tmp_path / "out", "partial1", 0)).status == "failed"


def test_runs_of_several_backbones_keep_separate_results(tiny_config, tmp_path):
    """The same strategy and seed on two backbones: two result files, named by backbone."""
    tiny = tiny_config.with_train(max_epochs=1)
    missing = str(tmp_path / "no-such-checkpoint")  # fails fast: no config to load
    runs = [dataclasses.replace(tiny, model=m) for m in ("tiny-w2v2", missing)]
    results = run_sweep(runs, tmp_path / "out", Console(quiet=True))
    assert [r.status for r in results] == ["ok", "failed"]
    assert read_result(result_path(tmp_path / "out", "partial2", 0, "tiny-w2v2")).status == "ok"
    assert read_result(result_path(tmp_path / "out", "partial2", 0, missing)).status == "failed"
    assert read_result(result_path(tmp_path / "out", "partial2", 0)) is None


def test_cuda_oom_is_reported_as_oom(tiny_config, monkeypatch):
    def boom(cfg, progress):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("bench.train.worker.run_one", boom)
    result = run_guarded(tiny_config)
    assert result.status == "oom" and "Tried to allocate 2.00 GiB" in result.error
    assert any("--batch-size" in n for n in result.notes)


def test_an_exception_keeps_its_traceback(tiny_config, monkeypatch):
    def broken(cfg, progress):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("bench.train.worker.run_one", broken)
    result = run_guarded(tiny_config)
    assert result.status == "failed" and result.error == "ZeroDivisionError: division by zero"
    assert "ZeroDivisionError" in result.traceback


def test_interrupted_and_failed_runs_are_rerun_on_resume(tiny_config, tmp_path):
    cfg = dataclasses.replace(tiny_config.with_train(max_epochs=1), strategy="partial1")
    path = result_path(tmp_path, "partial1", 0)
    write_result(path, interrupted_result(cfg))
    [result] = run_sweep([cfg], tmp_path, Console(quiet=True))
    assert result.status == "ok"
    assert read_result(path).status == "ok"


def test_ctrl_c_keeps_finished_results_and_marks_the_partial_run(tmp_path, synth_dir):
    out = tmp_path / "run"
    env = {**os.environ, "SERBENCH_CACHE": str(synth_dir), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "bench.cli.run",
        "--profile",
        "smoke",
        "--strategies",
        "partial1,partial2",
        "--epochs",
        "200",
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.time() + 120
    while not (out / "results").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the first run is training now
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "interrupted" in err.decode()
    first = read_result(result_path(out, "partial1", 0))
    assert first.status == "interrupted" and "rerun" in first.error
    assert read_result(result_path(out, "partial2", 0)) is None  # never started


def _exit_one(run, cfg_dict, path, events, log):
    """A run process that dies before writing its result (what an uncaught error does)."""
    with open(log, "w") as fh:
        fh.write("Traceback (most recent call last):\nImportError: planted\n")
    sys.exit(1)


def test_a_run_that_exits_with_code_1_names_the_code_and_its_log(tiny_config, tmp_path):
    from bench.launch.isolated import run_one_isolated

    path = result_path(tmp_path, "partial2", 0)
    result = run_one_isolated(tiny_config, path, lambda e: None, target=_exit_one)
    assert result.status == "failed" and result.exitcode == 1
    assert "exit code 1" in result.error and "out-of-memory" not in result.error
    assert str(tmp_path / "logs" / "partial2__seed0.log") in result.error
    assert "ImportError: planted" in result.error
    assert read_result(path).error == result.error


def _hang(run, cfg_dict, path, events, log):
    """A run process that never ends (a planted hang: a stuck NVML sampler, a deadlock)."""
    with open(log, "w") as fh:
        fh.write("epoch 1: waiting for something that never comes\n")
    time.sleep(3600)


def test_a_run_past_its_run_timeout_is_killed_and_recorded_as_timeout(tiny_config, tmp_path):
    from bench.launch.isolated import run_one_isolated

    path = result_path(tmp_path, "partial2", 0)
    t0 = time.monotonic()
    result = run_one_isolated(tiny_config, path, lambda e: None, target=_hang, timeout_s=1.0)
    assert time.monotonic() - t0 < 30  # killed, not waited for
    assert result.status == "timeout" and "--run-timeout 1 s" in result.error
    assert "waiting for something that never comes" in result.error  # the log's last words
    assert read_result(path).status == "timeout"


def test_run_timeout_is_a_launch_option_checked_up_front():
    import argparse

    from bench.errors import BenchError
    from bench.launch.options import add_launch_arguments, launch_options

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    add_launch_arguments(ap)
    assert launch_options(ap.parse_args(["--run-timeout", "90"])).run_timeout_s == 90.0
    assert launch_options(ap.parse_args([])).run_timeout_s is None
    with pytest.raises(BenchError, match="--run-timeout takes seconds > 0"):
        launch_options(ap.parse_args(["--run-timeout", "0"]))


def test_a_diverged_run_is_written_marked_and_reported(tiny_config, tmp_path, monkeypatch):
    import math

    import bench.train.worker
    from bench.report import render

    real_train = bench.train.worker.train

    def nan_ccc(*args, **kwargs):
        out = real_train(*args, **kwargs)
        out.test_ccc = {d: math.nan for d in out.test_ccc}
        out.test_ccc_mean = math.nan
        return out

    monkeypatch.setattr(bench.train.worker, "train", nan_ccc)
    result = run_guarded(tiny_config.with_train(max_epochs=1))
    assert result.status == "diverged" and "non-finite test CCC" in result.error
    path = result_path(tmp_path, "partial2", 0)
    write_result(path, result)
    stored = read_result(path)
    assert stored.status == "diverged" and stored.metrics.ccc_mean is None
    assert any("written as null" in n for n in stored.notes)
    md = render(tmp_path, [stored]).markdown.read_text()
    assert "partial2 seed 0 diverged" in md


def test_a_run_dies_with_its_sweep(tmp_path, synth_dir):
    """A sweep killed outright (SIGKILL: nothing of it can clean up) takes its running run with
    it, instead of leaving the run training on its own."""
    import pytest

    from bench.meter.nvml import process_tree

    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signals are Linux only")
    out = tmp_path / "run"
    env = {**os.environ, "SERBENCH_CACHE": str(synth_dir), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "bench.cli.run", "--profile", "smoke", "--strategies", "partial1"]
    cmd += ["--epochs", "500", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "logs" / "partial1__seed0.log"
    deadline = time.time() + 120
    tree: set[int] = set()
    while time.time() < deadline and len(tree) < 3:  # the sweep, its fork server, the run
        time.sleep(0.2)
        tree = process_tree(proc.pid) if log.exists() else set()
    assert len(tree) >= 3, "the run never started"
    proc.kill()
    proc.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        return state != "Z"

    deadline = time.time() + 30
    while time.time() < deadline and any(alive(p) for p in tree - {proc.pid}):
        time.sleep(0.2)
    assert not any(alive(p) for p in tree - {proc.pid})


def _ok_after_a_while(run, cfg_dict, path, events, log):
    """A run that outlives its fork server: says it started, then writes an ok result."""
    from bench.config import RunConfig
    from bench.result.start import started_result

    events.put({"phase": "started"})
    time.sleep(3)
    write_result(path, started_result(RunConfig.from_dict(cfg_dict)).replace(status="ok"))


def test_a_dead_fork_server_does_not_decide_the_runs_outcome(tiny_config, tmp_path):
    """The fork server dies while the run trains: multiprocessing then reports "exit code 255"
    at once; the run's own result decides instead."""
    from multiprocessing import forkserver

    from bench.launch.isolated import run_one_isolated

    killed = []

    def kill_server(event: dict) -> None:
        if event.get("phase") == "started" and not killed:
            pid = forkserver._forkserver._forkserver_pid
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    path = result_path(tmp_path, "partial2", 0)
    result = run_one_isolated(tiny_config, path, kill_server, target=_ok_after_a_while)
    assert killed, "the run never said it started"
    assert result.status == "ok" and result.error is None
    assert read_result(path).status == "ok"


def test_a_run_supersedes_a_finished_result_of_other_settings_never_deletes_it(
    tiny_config, tmp_path
):
    from bench.launch.isolated import run_one_isolated
    from bench.result.start import started_result

    path = result_path(tmp_path, "partial2", 0)
    other = tiny_config.with_train(max_epochs=7)
    write_result(path, started_result(other).replace(status="ok"))
    result = run_one_isolated(tiny_config, path, lambda e: None, target=_exit_one)
    assert result.status == "failed"
    [kept] = (tmp_path / "results" / "superseded").glob("partial2__seed0__*.json")
    assert read_result(kept).run_id == other.config_hash()
