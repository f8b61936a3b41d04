"""One run as a submitit job, and the result of a job that could not write its own.

`RunTask` is what the gpus and slurm launchers submit. It runs inside the job's process and
supervises the run exactly as the local launcher does (`bench.launch.isolated.run_one_isolated`: a fresh
process, a crash becomes a result), and it turns the scheduler's stop signals into results:
Slurm warns with USR2 `signal_delay_s` before the time limit (submitit's `--signal`) and sends
SIGTERM at the limit, on preemption and on `scancel`. The first such signal stops the run and
records `timeout` (the limit is near) or `preempted` (it is not), with the job's log path.
A job killed outright (SIGKILL, node failure) writes nothing; the submitting process then
records it with `lost_task_result`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.config import RunConfig
from bench.launch.isolated import RunFn, interrupted_result, log_tail, run_one_isolated
from bench.launch.options import slurm_duration_s
from bench.result import RunResult
from bench.result.store import write_result
from bench.train.worker import run_guarded

# Slurm checks time limits and sends --signal on a coarse tick: "the signal may be sent up to 60
# seconds earlier than specified" (sbatch(1)). A stop this close to the limit is the limit.
SIGNAL_RESOLUTION_S = 60.0


class RunStopped(KeyboardInterrupt):
    """Raised in the task's main thread by a stop signal. A KeyboardInterrupt, so that
    `run_one_isolated` stops and reaps the run's process exactly as it does on Ctrl-C."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def slurm_time_left_s() -> float | None:
    """Seconds until this Slurm job's time limit (squeue %L), or None outside Slurm, without a
    limit, or when squeue does not answer."""
    job = os.environ.get("SLURM_JOB_ID")
    if job is None:
        return None
    try:
        out = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%L"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    return None if out.returncode or not lines else slurm_duration_s(lines[0])


def stop_status(
    signum: int, time_left_s: float | None, signal_delay_s: float, launcher: str
) -> tuple[str, str]:
    """(status, error) for a run stopped by signal `signum` with `time_left_s` to its limit."""
    name = signal.Signals(signum).name
    if time_left_s is not None and time_left_s <= signal_delay_s + SIGNAL_RESOLUTION_S:
        return "timeout", (
            f"hit the task's time limit ({name} {time_left_s:.0f} s before it): the run was "
            "stopped; give it more time (--slurm-time) or fewer epochs"
        )
    if launcher == "slurm":
        left = "" if time_left_s is None else f", {time_left_s:.0f} s before its time limit"
        return "preempted", (
            f"stopped by Slurm ({name}{left}): preempted, or cancelled with scancel; "
            "resubmit the same command to rerun it"
        )
    return "interrupted", f"stopped by {name}; rerun the same command to resume"


def task_launch_info(launcher: str) -> dict:
    """Where this job runs and logs, from submitit's view of its environment."""
    import socket

    import submitit

    env = submitit.JobEnvironment()
    return {
        "launcher": launcher,
        "job_id": env.job_id,
        "host": socket.gethostname(),
        "log": str(env.paths.stderr),
        "stdout": str(env.paths.stdout),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


@dataclass(frozen=True)
class RunTask:
    """One run, submitted as a submitit job; returns the status it recorded.

    `time_limit_s`/`signal_delay_s`: the limit the scheduler enforces and how long before it the
    warning signal comes (None: no limit). Picklable: the job process imports `bench` from the
    submitting checkout (the launchers put it on PYTHONPATH).
    """

    config: dict  # RunConfig.to_dict()
    result_path: str
    label: str  # how log lines name the run
    launcher: str  # gpus | slurm
    time_limit_s: float | None = None
    signal_delay_s: float = 0.0
    run: RunFn = run_guarded  # what the job runs in the run's fresh process
    run_timeout_s: float | None = None  # --run-timeout: the run is killed (status timeout)

    def __call__(self) -> str:
        cfg = RunConfig.from_dict(self.config)
        path = Path(self.result_path)
        launch = task_launch_info(self.launcher)
        label = self.label
        print(f"serbench: {label} -> {path}", flush=True)
        started = time.monotonic()

        def time_left() -> float | None:
            left = slurm_time_left_s()
            if left is None and self.time_limit_s is not None:
                left = self.time_limit_s - (time.monotonic() - started)
            return left

        with _stop_signals(
            lambda signum: stop_status(signum, time_left(), self.signal_delay_s, self.launcher)
        ) as armed:
            try:
                result = run_one_isolated(
                    cfg, path, _print_validation(label), self.run, timeout_s=self.run_timeout_s
                )
                armed.clear()  # a signal from here on cannot stop a run that has ended
            except RunStopped as stop:
                result = interrupted_result(cfg).replace(
                    status=stop.status, error=f"{stop.message}; log: {launch['log']}"
                )
        result = result.replace(launch=launch)
        if not result.ok and launch["log"] not in (result.error or ""):
            result = result.replace(error=f"{result.error}; log: {launch['log']}")
        write_result(path, result)
        print(f"serbench: {label} {result.status}", flush=True)
        return result.status


def _print_validation(label: str) -> Callable[[dict], None]:
    def on_event(e: dict) -> None:
        if e.get("phase") == "val":  # the job's log shows how far the run got
            print(
                f"{label} epoch {e['epoch'] + 1}/{e['epochs']}: val CCC {e['val_ccc_mean']:.3f}",
                flush=True,
            )

    return on_event


@contextlib.contextmanager
def _stop_signals(classify: Callable[[int], tuple[str, str]]) -> Iterator[set[str]]:
    """Install USR2/SIGTERM handlers that raise RunStopped once, while the yielded set is
    non-empty; later signals are only printed. Restores the previous handlers on exit."""
    armed = {"armed"}

    def handler(signum: int, frame) -> None:
        if not armed:
            print(
                f"serbench: {signal.Signals(signum).name} ignored (the run has ended)", flush=True
            )
            return
        armed.clear()
        status, message = classify(signum)
        print(f"serbench: {signal.Signals(signum).name}: {status}: {message}", flush=True)
        raise RunStopped(status, message)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        yield armed
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def lost_task_result(cfg: RunConfig, launch: dict, state: str) -> RunResult:
    """The result of a job that ended (scheduler state `state`) without writing one: killed
    outright, out of host memory, its node lost. Names the state, the job's log and its end."""
    status = {"TIMEOUT": "timeout", "PREEMPTED": "preempted"}.get(state, "failed")
    log = launch.get("log")
    tail = log_tail(Path(log)) if log else ""
    return interrupted_result(cfg).replace(
        status=status,
        error=(
            f"{launch['launcher']} job {launch['job_id']} ended without writing a result "
            f"({state}): killed outright, e.g. by the out-of-memory killer, a hard time limit "
            f"or a lost node; log: {log}" + (f"; it ends with: {tail}" if tail else "")
        ),
        launch=launch,
    )
