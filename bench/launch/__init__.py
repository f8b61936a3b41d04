"""Where a sweep's runs execute: `local` (local.py, one run at a time), `gpus` (gpus.py, one run
per GPU of this machine at a time) or `slurm` (slurm.py, one array task per run), the last two
through submitit. `LAUNCHERS` maps each name to its launcher; every launcher is handed the
function a run executes (`bench.train.worker.run_guarded` by default) and runs it through
`isolated.run_one_isolated`, in a fresh process.

Every launcher resumes the same way (runs already finished ok with the same configuration are
skipped), and every run writes its result into RUN_DIR/results/ itself, whatever happens to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from bench.config import RunConfig
from bench.launch import gpus
from bench.launch.folder_lock import run_folder_lock
from bench.launch.isolated import (
    PlannedRun,
    RunFn,
    interrupted_result,
    planned_runs,
    split_finished,
)
from bench.launch.local import run_sweep
from bench.launch.monitor import Followed, follow, own_result
from bench.launch.options import LaunchOptions, add_launch_arguments, launch_options
from bench.launch.task import RunTask
from bench.result import RunResult
from bench.result.store import write_result
from bench.train.worker import run_guarded

__all__ = ["LaunchOptions", "add_launch_arguments", "launch_options", "launch_sweep"]


def jobs_folder(out_dir: Path) -> Path:
    """Where submitit keeps each job's pickles and logs: RUN_DIR/jobs/<job id>/."""
    return Path(out_dir).resolve() / "jobs"


def launch_sweep(
    configs: list[RunConfig],
    out_dir: Path,
    console: Console,
    options: LaunchOptions,
    force: bool = False,
    run: RunFn = run_guarded,
) -> list[RunResult] | None:
    """Run the sweep with the chosen launcher; all results in config order, or None when
    `options.wait` is False (the tasks were submitted and run on without us).

    The run folder is locked first: a second sweep on it (another process or host) is refused
    with a BenchError naming the holder, before it skips, supersedes or reruns anything."""
    with run_folder_lock(out_dir):
        return LAUNCHERS[options.launcher](configs, out_dir, console, options, force, run)


def _local(
    configs: list[RunConfig],
    out_dir: Path,
    console: Console,
    options: LaunchOptions,
    force: bool,
    run: RunFn,
) -> list[RunResult]:
    return run_sweep(
        configs, out_dir, console, force=force, run=run, run_timeout_s=options.run_timeout_s
    )


def _submitted(runner: Callable) -> Callable:
    """A launcher that submits the runs still to do as jobs (`runner`: gpus or slurm)."""

    def launch(
        configs: list[RunConfig],
        out_dir: Path,
        console: Console,
        options: LaunchOptions,
        force: bool,
        run: RunFn,
    ) -> list[RunResult] | None:
        runs = planned_runs(configs, out_dir)
        done, todo = split_finished(runs, force, console)
        if todo:
            Path(out_dir, "results").mkdir(parents=True, exist_ok=True)
            finished = runner([runs[i] for i in todo], todo, out_dir, console, options, run)
            if finished is None:
                return None
            done.update(finished)
        return [done[i] for i in range(len(configs))]

    return launch


def _task(
    run: PlannedRun,
    launcher: str,
    fn: RunFn,
    time_min: int | None = None,
    run_timeout_s: float | None = None,
) -> RunTask:
    return RunTask(
        run_timeout_s=run_timeout_s,
        config=run.cfg.to_dict(),
        result_path=str(run.path.resolve()),
        label=run.label,
        launcher=launcher,
        time_limit_s=None if time_min is None else time_min * 60.0,
        signal_delay_s=0.0 if time_min is None else float(_slurm().signal_delay_s(time_min)),
        run=fn,
    )


def _slurm():
    from bench.launch import slurm  # submitit is imported only when a launcher needs it

    return slurm


def _run_on_gpus(
    runs: list[PlannedRun],
    indices: list[int],
    out_dir: Path,
    console: Console,
    options: LaunchOptions,
    run: RunFn,
) -> dict[int, RunResult]:
    devices = gpus.choose_devices(options.gpus, gpus.visible_devices())
    pool = gpus.DevicePool(devices, gpus.local_starter(jobs_folder(out_dir)))
    items = [
        Followed(i, r, pool.submit(_task(r, "gpus", run, run_timeout_s=options.run_timeout_s)))
        for i, r in zip(indices, runs, strict=True)
    ]
    console.print(
        f"{len(items)} runs on {len(devices)} GPU(s) (CUDA_VISIBLE_DEVICES "
        f"{', '.join(devices)}), one at a time each; logs under {jobs_folder(out_dir)}"
    )
    try:
        return follow(items, console, "gpus", poll=pool.step, interval_s=1.0)
    except KeyboardInterrupt:
        # Ctrl-C reached the runs too (same process group); stop what is left, and make sure
        # every run that started says how it ended (queued ones never started: no result, as
        # with the local launcher).
        pool.cancel()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(j.state() == "RUNNING" for j in pool.jobs):
            time.sleep(0.2)
        for item in items:
            if item.handle.job_id is not None and own_result(item) is None:
                write_result(item.run.path, interrupted_result(item.run.cfg))
        raise


def _run_on_slurm(
    runs: list[PlannedRun],
    indices: list[int],
    out_dir: Path,
    console: Console,
    options: LaunchOptions,
    run: RunFn,
) -> dict[int, RunResult] | None:
    slurm = _slurm()
    opts = options.slurm
    tasks = [_task(r, "slurm", run, opts.time_min, options.run_timeout_s) for r in runs]
    jobs = slurm.submit_array(tasks, jobs_folder(out_dir), opts)
    array_id = str(jobs[0].job_id).split("_")[0]
    console.print(
        f"submitted {len(jobs)} runs as Slurm array job {array_id}; logs under "
        f"{jobs_folder(out_dir)}/{array_id}_<task>/"
    )
    if not options.wait:
        console.print(
            f"not waiting (--no-wait): `squeue -j {array_id}` shows the tasks; when they end, "
            f"`python -m bench.report {out_dir}` renders the report"
        )
        return None
    queue = slurm.SlurmQueue(jobs)
    items = [
        Followed(i, r, slurm.SlurmTask(job, queue))
        for i, r, job in zip(indices, runs, jobs, strict=True)
    ]
    try:
        return follow(items, console, "slurm", poll=queue.refresh, interval_s=3.0)
    except KeyboardInterrupt:
        console.print(
            f"stopped following; the tasks keep running on the cluster (`scancel {array_id}` "
            f"stops them). `python -m bench.report {out_dir}` renders what has finished; the "
            "same command resubmits what has not"
        )
        raise


# The launchers by name (--launcher); each takes (configs, out_dir, console, options, force, run).
LAUNCHERS: dict[str, Callable] = {
    "local": _local,
    "gpus": _submitted(_run_on_gpus),
    "slurm": _submitted(_run_on_slurm),
}
