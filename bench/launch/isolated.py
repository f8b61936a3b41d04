"""What every launcher shares: one run in a fresh process (`run_one_isolated`: a crash becomes a
result naming its likely cause), where each run's result goes, what is already done (resume), and
how progress is shown."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue as queue_mod
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.config import RunConfig, lr_label
from bench.result import RunResult
from bench.result.start import started_result
from bench.result.store import log_path, read_result, result_path, supersede, write_result
from bench.train.worker import run_guarded

# What a launcher runs in each fresh process: a config and a progress callback in, a result out
# (`bench.train.worker.run_guarded` unless a caller hands another). A module-level function, so
# that it pickles by name into the run's process.
RunFn = Callable[[RunConfig, Callable[[dict], None]], RunResult]


def _child(run: RunFn, cfg_dict: dict, path: str, events: mp.Queue, log: str) -> None:
    # Slurm sends its time-limit warning (USR2, submitit's choice) to every process of a task;
    # its default action would kill the run before the supervising task can record why.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    # Everything the run prints, native libraries included, goes to its log file: fds 1 and 2
    # are redirected, not just sys.stdout, so a crash in C code leaves its last words there.
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    result = run(RunConfig.from_dict(cfg_dict), events.put)
    write_result(path, result.replace(log=log))


# What an exit without a result most likely means, by exit code (negative: killed by signal).
LIKELY_CAUSE = {
    1: "an error outside the guarded run (an import error, or a failure writing the result); "
    "the traceback is at the end of the log",
    -signal.SIGKILL: "SIGKILL, most often the kernel's out-of-memory killer when host RAM runs "
    "out (`dmesg | grep -i oom` tells), or a scheduler's or a user's kill",
    -signal.SIGSEGV: "a crash in native code (segmentation fault in a CUDA, driver or extension library)",
    -signal.SIGABRT: "native code aborted (an assertion in a C++ or CUDA library)",
    -signal.SIGTERM: "SIGTERM: stopped by a user or a job scheduler",
    -signal.SIGBUS: "a bus error, often a memory-mapped file (the prefix cache on disk) that "
    "shrank or a full /dev/shm",
}


def log_tail(log: Path, lines: int = 5) -> str:
    """The last `lines` non-empty lines of a log, joined with ' | '; '' when unreadable."""
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return " | ".join(t.strip() for t in tail if t.strip())


def _failed_exit(cfg: RunConfig, exitcode: int | None, log: Path) -> RunResult:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            how = f"killed by signal {-exitcode}"
    elif exitcode is None:
        how = "exit code unknown: the fork server that started it ended before it"
    else:
        how = f"exit code {exitcode}"
    cause = LIKELY_CAUSE.get(exitcode or 0, "no known cause for this code; read the log")
    tail = log_tail(log)
    return started_result(cfg).replace(
        error=f"run process ended without a result ({how}); likely cause: {cause}. Log: {log}"
        + (f"; it ends with: {tail}" if tail else ""),
        log=str(log),
        exitcode=exitcode,
    )


def timeout_result(cfg: RunConfig, limit_s: float, log: Path) -> RunResult:
    """A run killed at its time limit (--run-timeout)."""
    tail = log_tail(log)
    return started_result(cfg).replace(
        status="timeout",
        error=f"killed at its time limit (--run-timeout {limit_s:g} s); give it more time or "
        f"fewer epochs. Log: {log}" + (f"; it ends with: {tail}" if tail else ""),
        log=str(log),
    )


def _stop(proc) -> None:
    """Stop a run's process: SIGTERM, then SIGKILL if it is still there after 5 s. Its loader
    workers and NVML sampler end with it (they watch their parent, or read its pipe)."""
    proc.terminate()
    proc.join(timeout=5)
    if proc.is_alive():
        proc.kill()
        proc.join()


def interrupted_result(cfg: RunConfig) -> RunResult:
    return started_result(cfg).replace(
        status="interrupted", error="interrupted by the user (Ctrl-C); rerun the command to resume"
    )


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its config, where its result goes, how progress lines name it."""

    cfg: RunConfig
    path: Path
    label: str


def planned_runs(configs: list[RunConfig], out_dir: Path) -> list[PlannedRun]:
    """Every run's result file and label. Runs name their backbone when the sweep has several
    (--model a,b) and their fold when it has folds (--folds)."""
    several = len({c.model for c in configs}) > 1
    runs = []
    for c in configs:
        model = c.model if several else None
        fold = "" if c.data.fold is None else f" fold {c.data.fold}"
        lr = lr_label(c.train)
        at = f" lr {lr}" if lr else ""
        label = f"{model + ' ' if model else ''}{c.strategy}{at} seed {c.seed}{fold}"
        path = result_path(out_dir, c.strategy, c.seed, model, c.data.fold, lr)
        runs.append(PlannedRun(c, path, label))
    return runs


def finished_result(run: PlannedRun) -> RunResult | None:
    """The stored result of `run` when it finished (ok, or diverged) with this exact
    configuration, else None (absent, failed, interrupted, or other settings: a run to do)."""
    old = read_result(run.path)
    if (
        old
        and old.run_id == run.cfg.config_hash()
        and old.status in ("ok", "diverged")  # finished; a rerun repeats it
    ):
        return old
    return None


def split_finished(
    runs: list[PlannedRun], force: bool, console: Console
) -> tuple[dict[int, RunResult], list[int]]:
    """(results of runs already done, by position in `runs`; positions still to run).
    Every launcher resumes this way: the same command skips what finished; --force reruns, and
    keeps each result it replaces under results/superseded/."""
    done: dict[int, RunResult] = {}
    todo: list[int] = []
    for i, run in enumerate(runs):
        old = None if force else finished_result(run)
        if old is None:
            todo.append(i)
            if force and run.path.exists():
                kept = supersede(run.path)
                console.print(
                    f"[dim]--force: the earlier result is kept as {escape(str(kept))}[/dim]"
                )
            continue
        # print, not log: log adds a timestamp and a source path to every CI log line
        console.print(
            f"[dim]{escape(f'skip {run.label}: result exists ({run.path.name})')}; --force reruns[/dim]"
        )
        done[i] = old
    return done, todo


def outcome_line(label: str, result: RunResult) -> str:
    """One console line (rich markup; the label and the error escaped, so an OOM message's
    `[enforce fail at alloc_cpu.cpp:127]` is printed, not taken for markup) saying how a run ended."""
    if result.ok and result.metrics is not None and result.metrics.ccc_mean is not None:
        return f"[green]done[/green] {escape(label)}: test CCC {result.metrics.ccc_mean:.3f}"
    return f"[red]{result.status}[/red] {escape(f'{label}: {result.error}')}"


# Runs are forked from a fork server that has imported torch, transformers, peft and the worker
# once (about 5 s a run otherwise, paid before every run of a sweep) and never initialises CUDA
# or runs an operation, so each run still starts from a clean process that shares nothing with
# the sweep or its siblings. The server keeps the environment it started with; each run gets the
# sweep's environment as it is at the run's start (`_in_env`).
PRELOAD = ["torch", "transformers", "peft"]


def run_context(run: RunFn = run_guarded):
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([*PRELOAD, run.__module__])
    return ctx


def _die_with(sweep: int) -> None:
    """A run outlives nothing it belongs to: when the process that started it (the sweep, or a
    scheduler's task) ends, however it ended, the run is killed. Its parent is the fork server,
    which itself lives on while any run does, so the run watches the sweep's pid (a pidfd: no
    pid reuse). Linux 5.3 and later; elsewhere a run whose sweep is killed outright finishes on
    its own, as a spawned one always did."""
    try:
        fd = os.pidfd_open(sweep)
    except ProcessLookupError:  # the sweep is already gone
        os._exit(1)
    except (AttributeError, OSError):
        return

    def watch() -> None:
        select.select([fd], [], [])  # readable once the sweep has exited
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-sweep", daemon=True).start()


def _pidfd(pid: int | None) -> int | None:
    """A pidfd of the run (no pid reuse), or None where there are none or it has already gone."""
    try:
        return None if pid is None else os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _running(pidfd: int | None, timeout: float = 0.0) -> bool:
    """Whether the process of `pidfd` still runs after waiting up to `timeout` seconds for it
    to end (a pidfd turns readable when its process exits; None: not known to run)."""
    return pidfd is not None and not select.select([pidfd], [], [], timeout)[0]


def _clear_for_run(path: Path) -> None:
    """Make way for a run's own result at `path`, so an earlier file is never taken for it: a
    finished result (another configuration's) is moved to results/superseded/, never deleted;
    a failed, interrupted or unreadable one is removed."""
    old = read_result(path)
    if old is not None and old.status in ("ok", "diverged"):
        supersede(path)
    else:
        path.unlink(missing_ok=True)


def _in_env(sweep: int, env: dict[str, str], target: Callable, *args) -> None:
    _die_with(sweep)
    os.environ.clear()
    os.environ.update(env)
    target(*args)


def run_one_isolated(
    cfg: RunConfig,
    path: Path,
    on_event: Callable[[dict], None],
    run: RunFn = run_guarded,
    target: Callable = _child,
    timeout_s: float | None = None,
) -> RunResult:
    """`run(cfg)` in a fresh process (`target`, normally `_child`) that writes its result to
    `path` and its output to the log beside it; a process that dies without a result gets one
    that names its exit code, the likely cause and the log. A run still going after
    `timeout_s` seconds (None: no limit) is killed and gets a result with status `timeout`."""
    ctx = run_context(run)
    events: mp.Queue = ctx.Queue()
    log = log_path(path)
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = ctx.Process(
        target=_in_env,
        args=(
            os.getpid(),
            dict(os.environ),
            target,
            run,
            cfg.to_dict(),
            str(path),
            events,
            str(log),
        ),
        daemon=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_for_run(path)
    outlived_server = False
    run_pid: int | None = None
    try:
        proc.start()  # the first start waits for the fork server's imports: Ctrl-C may come here
        run_pid = _pidfd(proc.pid)
        # The limit counts from the run's start, the fork server's first imports excluded.
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            alive = proc.is_alive()
            if deadline is not None and time.monotonic() > deadline and alive:
                _stop(proc)
                result = timeout_result(cfg, timeout_s, log)
                write_result(path, result)
                return result
            if not alive:
                # The fork server reports the run's exit; when the server itself dies first,
                # multiprocessing says "exit code 255" while the run trains on. The run's own
                # pid decides: wait for it, then for the result it writes.
                if _running(run_pid):
                    outlived_server = True
                elif events.empty():
                    break
            with contextlib.suppress(queue_mod.Empty):  # no event in this interval; poll again
                on_event(events.get(timeout=0.2))
        proc.join()
    except KeyboardInterrupt:
        # Ctrl-C reaches the child too; give it a moment, then make sure it is gone.
        if proc.pid is not None:
            proc.join(timeout=5)
            if proc.is_alive() or _running(run_pid, timeout=5 if outlived_server else 0):
                proc.kill()  # a signal to the run's pid: works without the fork server
                proc.join()
        write_result(path, interrupted_result(cfg))
        raise
    finally:
        if run_pid is not None:
            os.close(run_pid)
    result = read_result(path)
    if result is None:
        result = _failed_exit(cfg, None if outlived_server else proc.exitcode, log)
        write_result(path, result)
    return result


def sweep_progress(console: Console) -> Progress:
    """The sweep's progress bars: live on a terminal, off in logs (which get lines instead)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (console.is_terminal and not console.quiet),
    )
