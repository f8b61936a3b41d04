"""--launcher slurm: every run one task of a submitit array job; task states from squeue."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.launch.gpus import pythonpath_setup
from bench.launch.options import SlurmOptions
from bench.launch.task import RunTask

# Slurm's time-limit warning (USR2, through submitit's --signal) this long before the limit.
SIGNAL_DELAY_S = 90


def signal_delay_s(time_min: int | None) -> int:
    """Seconds of warning before the time limit: 90, or a sixth of a limit under 10 minutes
    (a 2-minute test task would otherwise be warned at its start)."""
    if time_min is None or time_min >= 10:
        return SIGNAL_DELAY_S
    return max(10, time_min * 60 // 6)


def sbatch_parameters(opts: SlurmOptions) -> dict[str, Any]:
    """submitit SlurmExecutor parameters for `opts` (None values leave sbatch's default)."""
    params: dict[str, Any] = {
        "job_name": "serbench",
        "partition": opts.partition,
        # Without --slurm-time no --time at all: the partition's default limit applies.
        "time": opts.time_min,
        "gpus_per_task": opts.gpus_per_task or None,
        "cpus_per_task": opts.cpus_per_task,
        "mem": opts.mem,
        "account": opts.account,
        "additional_parameters": dict(opts.extra),
        "setup": [pythonpath_setup()],
        "signal_delay_s": signal_delay_s(opts.time_min),
    }
    if opts.array_parallelism is not None:
        params["array_parallelism"] = opts.array_parallelism
    return params


def submit_array(tasks: list[RunTask], folder: Path, opts: SlurmOptions) -> list[Any]:
    """Submit `tasks` as one array job; its jobs (submitit SlurmJob), in order."""
    import submitit

    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise BenchError(
            "--launcher slurm: sbatch/srun not found; submit from a Slurm login node "
            "(or use --launcher local / gpus)"
        )
    executor = submitit.SlurmExecutor(folder=folder / "%j")
    executor.update_parameters(**sbatch_parameters(opts))
    try:
        with executor.batch():
            jobs = [executor.submit(t) for t in tasks]
    except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError) as exc:
        detail = getattr(exc, "stderr", None) or getattr(exc, "output", None) or exc
        if isinstance(detail, bytes):
            detail = detail.decode(errors="replace")
        lines = "; ".join(line.strip() for line in str(detail).splitlines() if line.strip())
        raise BenchError(
            f"sbatch refused the array job: {lines}; check --slurm-partition, "
            "--slurm-account, --slurm-gpus-per-task and --slurm-extra"
        ) from None
    return jobs


# Slurm job states in which a task has not ended yet (squeue %T).
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "SUSPENDED",
        "STOPPED",
    }
)


class SlurmQueue:
    """States of array tasks, one squeue call per refresh for all of them.

    squeue keeps a finished task for MinJobAge (300 s by default); a task it no longer lists has
    ended, and its state comes from sacct through submitit where accounting exists, else GONE."""

    def __init__(self, jobs: list[Any]):
        self.jobs = jobs
        self.array_ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
        self.states: dict[str, str] = {}
        self.error: str | None = None

    def refresh(self) -> None:
        cmd = ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(self.array_ids)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            self.error = f"squeue failed: {exc}"
            return  # keep the last known states; the next refresh tries again
        if out.returncode and "Invalid job id" not in out.stderr:
            self.error = f"squeue failed: {out.stderr.strip()}"
            return
        self.error = None
        seen = dict(line.split("|", 1) for line in out.stdout.splitlines() if "|" in line)
        for job in self.jobs:
            jid = str(job.job_id)
            if jid in seen:
                self.states[jid] = seen[jid]
            elif self.states.get(jid, "PENDING") in ACTIVE_STATES:
                self.states[jid] = self._after_squeue(job)

    @staticmethod
    def _after_squeue(job: Any) -> str:
        if Path(job.paths.result_pickle).exists():
            return "COMPLETED"  # submitit's record that the task function returned
        state = str(job.watcher.get_state(str(job.job_id), mode="force"))  # sacct
        return "GONE" if state == "UNKNOWN" else state

    def state(self, job: Any) -> str:
        return self.states.get(str(job.job_id), "PENDING")


@dataclass
class SlurmTask:
    """One submitted array task, as the follower sees it."""

    job: Any
    queue: SlurmQueue

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    def state(self) -> str:
        return self.queue.state(self.job)

    @property
    def log(self) -> Path:
        return Path(self.job.paths.stderr)
