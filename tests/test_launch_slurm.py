"""--launcher slurm on a real Slurm (CI starts a one-machine cluster: .ci/slurm/cluster start):
results equal the local launcher's; a task stopped by Slurm or killed outright becomes a result
naming its log; resubmitting skips finished runs."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from bench.launch import LaunchOptions, launch_sweep
from bench.launch.isolated import planned_runs
from bench.launch.options import SlurmOptions
from bench.meter.nvml import process_tree
from bench.result.store import read_result


def _cluster_answers() -> str | None:
    """None when a Slurm controller answers and has an idle node, else why not."""
    if shutil.which("sbatch") is None:
        return "sbatch not installed (CI installs slurm-wlm and runs .ci/slurm/cluster start)"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed: {exc}"
    if out.returncode or not any(s.startswith(("idle", "mixed")) for s in out.stdout.split()):
        return f"no Slurm node takes jobs (sinfo: {(out.stdout + out.stderr).strip()[:200]})"
    return None


pytestmark = pytest.mark.skipif(_cluster_answers() is not None, reason=str(_cluster_answers()))

# A CPU-only one-node cluster: no GPUs to ask for; one CPU per task so two run at once.
CI_SLURM = SlurmOptions(gpus_per_task=0, cpus_per_task=1, time_min=30)


def task_processes(job_id: str) -> set[int]:
    """The python process running array task `job_id` (<array>_<index>) and all it started,
    not srun (whose command line names the same module)."""
    array, index = job_id.split("_")
    want = {f"SLURM_ARRAY_JOB_ID={array}".encode(), f"SLURM_ARRAY_TASK_ID={index}".encode()}
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"submitit.core._submit" not in argv or Path(argv[0].decode()).name == "srun":
                continue
            if want <= set((proc / "environ").read_bytes().split(b"\0")):
                return process_tree(int(proc.name))
        except (OSError, ValueError):
            continue  # ended while we looked, or not ours to read
    return set()


def act_when_training(jobs: Path, label: str, act) -> threading.Thread:
    """In a thread: once the array task running `label` logs a finished epoch, call `act` with
    its job id (<array>_<index>, the name of its log folder)."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for log in jobs.glob("*/*_log.out"):
                if f"{label} epoch" in log.read_text(errors="replace"):
                    act(log.parent.name)
                    return
            time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def preempt(job_id: str) -> None:
    """What Slurm does to a preempted (or scancel'ed) task first: SIGTERM to its processes."""
    subprocess.run(["scancel", "--signal=TERM", job_id], check=True)


def kill_outright(job_id: str) -> None:
    """What the out-of-memory killer does: SIGKILL, no warning (scancel --signal=KILL is not
    that: srun may send SIGTERM to the task first)."""
    for pid in task_processes(job_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_slurm_sweep_records_preempted_and_killed_tasks_and_resubmission_skips_finished(
    tiny_config, tmp_path, monkeypatch
):
    monkeypatch.setattr("bench.launch.monitor.GRACE_S", 1.0)
    fast = dataclasses.replace(tiny_config.with_train(max_epochs=1), strategy="partial2")
    term = dataclasses.replace(tiny_config.with_train(max_epochs=500), strategy="partial1")
    kill = dataclasses.replace(term, strategy="head")
    out = tmp_path / "run"
    options = LaunchOptions("slurm", slurm=CI_SLURM)
    watchers = [
        act_when_training(out / "jobs", "partial1 seed 0", preempt),
        act_when_training(out / "jobs", "head seed 0", kill_outright),
    ]
    ok, preempted, killed = launch_sweep([fast, term, kill], out, Console(quiet=True), options)
    for w in watchers:
        w.join(timeout=5)
    assert ok.status == "ok" and ok.launch["launcher"] == "slurm"
    assert preempted.status == "preempted" and "scancel" in preempted.error
    assert Path(preempted.launch["log"]).is_file()
    assert killed.status == "failed" and "without writing a result" in killed.error
    assert f"log: {killed.launch['log']}" in killed.error

    # The same command again: only the two unfinished runs are submitted.
    submitted: list[str] = []

    def spy(tasks, folder, opts):
        submitted.extend(t.config["strategy"] for t in tasks)
        raise KeyboardInterrupt  # stop before anything reaches Slurm

    monkeypatch.setattr("bench.launch.slurm.submit_array", spy)
    mtime = planned_runs([fast], out)[0].path.stat().st_mtime_ns
    with pytest.raises(KeyboardInterrupt):
        launch_sweep([fast, term, kill], out, Console(quiet=True), options)
    assert submitted == ["partial1", "head"]
    assert planned_runs([fast], out)[0].path.stat().st_mtime_ns == mtime
    assert read_result(planned_runs([fast], out)[0].path).status == "ok"
