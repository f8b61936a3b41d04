"""Launchers: option checks, the GPU pool (fake devices, real submitit jobs), and what becomes of
a run whose task is killed or reaches its time limit; resubmission skips finished runs."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path

import cloudpickle
import pytest
from rich.console import Console

from bench.errors import BenchError
from bench.launch import LaunchOptions, launch_sweep
from bench.launch.gpus import (
    NO_LIMIT_MIN,
    DevicePool,
    choose_devices,
    local_starter,
    pythonpath_setup,
)
from bench.launch.isolated import planned_runs
from bench.launch.options import add_launch_arguments, launch_options, parse_slurm_time
from bench.launch.slurm import sbatch_parameters
from bench.launch.task import RunTask, stop_status
from bench.meter.nvml import process_tree
from bench.result.store import read_result

FAKE_GPUS = ["7", "9"]  # CUDA_VISIBLE_DEVICES values; nothing here touches CUDA


def _args(*argv: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    add_launch_arguments(ap)
    return ap.parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--slurm-partition", "gpu"], "--slurm-partition only apply with --launcher slurm"),
        (["--launcher", "gpus", "--no-wait"], "--no-wait only applies with --launcher slurm"),
        (["--gpus", "0,1"], "--gpus only applies with --launcher gpus"),
        (["--launcher", "gpus", "--gpus", "0,x"], "--gpus takes device indices"),
        (["--launcher", "gpus", "--device", "cuda:1"], "choose them with --gpus"),
        (["--launcher", "slurm", "--slurm-time", "soon"], "--slurm-time 'soon'"),
        (["--launcher", "slurm", "--slurm-mem", "lots"], "--slurm-mem 'lots'"),
        (["--launcher", "slurm", "--slurm-extra", "time=10"], "set this with --slurm-time"),
        (["--launcher", "slurm", "--slurm-extra", "qos="], "KEY=VALUE"),
        (["--launcher", "slurm", "--slurm-cpus-per-task", "0"], "--slurm-cpus-per-task must be"),
    ],
)
def test_launch_options_refuse_what_would_be_ignored_or_wrong(argv, message):
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        launch_options(_args(*argv))


def test_slurm_options_become_sbatch_parameters():
    opts = launch_options(
        _args(
            "--launcher=slurm",
            "--slurm-partition=gpu",
            "--slurm-time=1:30:00",
            "--slurm-mem=32G",
            "--slurm-extra=qos=high",
            "--slurm-extra=exclusive",
        )
    )
    params = sbatch_parameters(opts.slurm)
    assert params["partition"] == "gpu" and params["time"] == 90 and params["mem"] == "32G"
    assert params["gpus_per_task"] == 1  # the default: one GPU per run
    assert params["additional_parameters"] == {"qos": "high", "exclusive": True}
    assert params["setup"] == [pythonpath_setup()] and params["signal_delay_s"] == 90
    bare = sbatch_parameters(
        launch_options(_args("--launcher=slurm", "--slurm-gpus-per-task=0")).slurm
    )
    assert bare["time"] is None and bare["gpus_per_task"] is None  # sbatch's defaults apply
    assert [parse_slurm_time(t) for t in ("90", "2-00:00:00", "0:30")] == [90, 2880, 1]


def test_stop_signals_are_told_apart_by_the_time_left():
    usr2 = int(signal.SIGUSR2)
    assert stop_status(usr2, 80.0, 90.0, "slurm")[0] == "timeout"
    assert stop_status(usr2, 140.0, 90.0, "slurm")[0] == "timeout"  # Slurm may warn 60 s early
    status, error = stop_status(int(signal.SIGTERM), 3600.0, 90.0, "slurm")
    assert status == "preempted" and "scancel" in error
    assert stop_status(int(signal.SIGTERM), None, 0.0, "gpus")[0] == "interrupted"


def test_choose_devices_by_index_of_the_visible_ones():
    assert choose_devices(None, ["3", "5"]) == ["3", "5"]
    assert choose_devices((1,), ["3", "5"]) == ["5"]
    with pytest.raises(BenchError, match="shows 2 GPU"):
        choose_devices((2,), ["3", "5"])
    with pytest.raises(BenchError, match="no CUDA GPU"):
        choose_devices(None, [])


def _record(folder: str, tag: int) -> str:
    """A fake run: notes its device and when it ran."""
    start = time.time()
    time.sleep(0.5)
    Path(folder, f"{tag}.json").write_text(
        json.dumps(
            {"device": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}
        )
    )
    return "ok"


def test_gpu_pool_runs_n_tasks_on_k_devices_one_per_device_at_a_time(tmp_path):
    # The job processes cannot import this test module: send the fake run by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        pool = DevicePool(FAKE_GPUS, local_starter(tmp_path / "jobs"))
        jobs = [pool.submit(partial(_record, str(tmp_path), i)) for i in range(5)]
        deadline = time.monotonic() + 180
        while any(j.state() in ("PENDING", "RUNNING") for j in jobs):
            assert time.monotonic() < deadline, [j.state() for j in jobs]
            pool.step()
            running = [j.device for j in jobs if j.state() == "RUNNING"]
            assert len(running) == len(set(running)) <= len(FAKE_GPUS)
            time.sleep(0.05)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert [j.state() for j in jobs] == ["COMPLETED"] * 5
    runs = [json.loads((tmp_path / f"{i}.json").read_text()) for i in range(5)]
    assert [r["device"] for r in runs] == [j.device for j in jobs]
    assert {r["device"] for r in runs} == set(FAKE_GPUS)  # both devices worked
    for device in FAKE_GPUS:
        spans = sorted((r["start"], r["end"]) for r in runs if r["device"] == device)
        assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans)), spans


def signal_when_training(
    jobs: Path, label: str, sig: int, task_only: bool = False
) -> threading.Thread:
    """In a thread: once the job running `label` logs a finished epoch, send `sig` to the job's
    processes below its shell (submitit's controller, the task, the run), or with `task_only` to
    the task and what it started, as Slurm signals a task's processes."""

    def pids(shell: int) -> set[int]:
        below = process_tree(shell) - {shell}
        if not task_only:
            return below
        task = next(
            p for p in below if b"submitit.core._submit" in Path(f"/proc/{p}/cmdline").read_bytes()
        )
        return process_tree(task)

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for log in jobs.glob("*/*_log.out"):
                if f"{label} epoch" in log.read_text(errors="replace"):
                    for pid in pids(int(log.parent.name)):
                        os.kill(pid, sig)
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


class _Stop(Exception):
    pass


def test_a_killed_task_becomes_a_failed_result_and_resubmission_skips_finished_runs(
    tiny_config, tmp_path, monkeypatch
):
    monkeypatch.setattr("bench.launch.gpus.visible_devices", lambda: FAKE_GPUS)
    monkeypatch.setattr("bench.launch.monitor.GRACE_S", 0.5)
    slow = dataclasses.replace(tiny_config.with_train(max_epochs=500), strategy="partial1")
    fast = dataclasses.replace(tiny_config.with_train(max_epochs=1), strategy="partial2")
    out = tmp_path / "run"
    killer = signal_when_training(out / "jobs", "partial1 seed 0", signal.SIGKILL)
    killed, ok = launch_sweep([slow, fast], out, Console(quiet=True), LaunchOptions("gpus"))
    killer.join(timeout=5)
    assert ok.status == "ok" and ok.launch["cuda_visible_devices"] in FAKE_GPUS
    assert killed.status == "failed" and "KILLED (signal 9)" in killed.error
    log = killed.launch["log"]
    assert f"log: {log}" in killed.error and Path(log).is_file()
    assert read_result(planned_runs([slow], out)[0].path).status == "failed"

    submitted = []

    def spy(pool, task):
        submitted.append(task.config["strategy"])
        raise _Stop

    monkeypatch.setattr(DevicePool, "submit", spy)
    mtime = planned_runs([fast], out)[0].path.stat().st_mtime_ns
    with pytest.raises(_Stop):
        launch_sweep([slow, fast], out, Console(quiet=True), LaunchOptions("gpus"))
    assert submitted == ["partial1"]  # the finished run is skipped, the killed one resubmitted
    assert planned_runs([fast], out)[0].path.stat().st_mtime_ns == mtime


def test_a_run_at_its_time_limit_records_timeout_with_its_log(tiny_config, tmp_path):
    import submitit

    cfg = dataclasses.replace(tiny_config.with_train(max_epochs=500), strategy="partial1")
    path = tmp_path / "result.json"
    executor = submitit.LocalExecutor(folder=tmp_path / "%j")
    executor.update_parameters(timeout_min=NO_LIMIT_MIN, setup=[pythonpath_setup()])
    # Slurm's warning (USR2) comes signal_delay_s before the limit; here it comes once the run
    # trains, well inside 30 s of its 40 s limit.
    task = RunTask(
        cfg.to_dict(), str(path), "partial1 seed 0", "gpus", time_limit_s=40.0, signal_delay_s=30.0
    )
    warner = signal_when_training(tmp_path, "partial1 seed 0", signal.SIGUSR2, task_only=True)
    assert executor.submit(task).result() == "timeout"
    warner.join(timeout=5)
    result = read_result(path)
    assert result.status == "timeout" and "time limit" in result.error
    assert f"log: {result.launch['log']}" in result.error
    assert "SIGUSR2: timeout" in Path(result.launch["stdout"]).read_text()
