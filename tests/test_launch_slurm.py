"""--launcher slurm on a real Slurm (CI starts a one-machine cluster: .ci/slurm/cluster start):
results equal the local launcher's; a task stopped by Slurm or killed outright becomes a result
naming its log; resubmitting skips finished runs."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from bench.launch import LaunchOptions, launch_sweep
from bench.launch.options import SlurmOptions
from bench.results import read_result
from bench.sweep import config_result_path


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


def scancel_when_training(jobs: Path, label: str, signal_name: str) -> threading.Thread:
    """In a thread: once the array task running `label` logs a finished epoch, have Slurm send
    it `signal_name` (TERM: what a preemption or scancel sends; KILL: killed outright)."""

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for log in jobs.glob("*/*_log.out"):
                if f"{label} epoch" in log.read_text(errors="replace"):
                    job_id = log.parent.name  # <array id>_<task index>
                    subprocess.run(["scancel", f"--signal={signal_name}", job_id], check=True)
                    return
            time.sleep(0.5)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


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
        scancel_when_training(out / "jobs", "partial1 seed 0", "TERM"),
        scancel_when_training(out / "jobs", "head seed 0", "KILL"),
    ]
    ok, preempted, killed = launch_sweep([fast, term, kill], out, Console(quiet=True), options)
    for w in watchers:
        w.join(timeout=5)
    assert ok["status"] == "ok" and ok["launch"]["launcher"] == "slurm"
    assert preempted["status"] == "preempted" and "scancel" in preempted["error"]
    assert Path(preempted["launch"]["log"]).is_file()
    assert killed["status"] == "failed" and "without writing a result" in killed["error"]
    assert f"log: {killed['launch']['log']}" in killed["error"]

    # The same command again: only the two unfinished runs are submitted.
    submitted: list[str] = []

    def spy(tasks, folder, opts):
        submitted.extend(t.config["strategy"] for t in tasks)
        raise KeyboardInterrupt  # stop before anything reaches Slurm

    monkeypatch.setattr("bench.launch.slurm.submit_array", spy)
    mtime = config_result_path(out, fast).stat().st_mtime_ns
    with pytest.raises(KeyboardInterrupt):
        launch_sweep([fast, term, kill], out, Console(quiet=True), options)
    assert submitted == ["partial1", "head"]
    assert config_result_path(out, fast).stat().st_mtime_ns == mtime
    assert read_result(config_result_path(out, fast))["status"] == "ok"
