"""Commands run one after another, each under its own time limit, each whatever the others did:
what `make gpu-check` needs in a short GPU window, where one hang or failure must not cost the
figures of the other steps. A step's output goes to its own log file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# After the limit: SIGTERM to the step's whole process group (a sweep's runs and their loader
# workers included), then SIGKILL to what is left after this grace.
KILL_GRACE_S = 5.0


@dataclass(frozen=True)
class Step:
    """One command of a check. `skip` (why) instead of running it, where it cannot run here."""

    name: str
    argv: tuple[str, ...]
    limit_s: float
    skip: str | None = None
    what: str = ""  # one line for the summary


@dataclass(frozen=True)
class StepOutcome:
    name: str
    status: str  # ok | failed | timeout | skipped
    seconds: float
    limit_s: float
    returncode: int | None
    log: Path | None
    detail: str = ""  # why skipped, or what the end of a failure's log says

    def line(self) -> str:
        """The step's row of the summary."""
        took = "-" if self.status == "skipped" else f"{self.seconds:.0f} s"
        tail = f"  {self.detail}" if self.detail else ""
        return f"{self.name:<14} {self.status:<8} {took:>7} / {self.limit_s:.0f} s{tail}"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError):  # what is left of the group (workers, runs)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _last_line(log: Path) -> str:
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def run_step(step: Step, log_dir: Path, env: dict[str, str], budget_s: float) -> StepOutcome:
    """Run `step` with its output in `log_dir/<name>.log`, killed (its whole process group)
    after `min(step.limit_s, budget_s)` seconds."""
    if step.skip is not None:
        return StepOutcome(step.name, "skipped", 0.0, step.limit_s, None, None, step.skip)
    limit = min(step.limit_s, budget_s)
    if limit <= 0:
        why = "the check's total time budget was spent before this step"
        return StepOutcome(step.name, "skipped", 0.0, step.limit_s, None, None, why)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{step.name}.log"
    t0 = time.perf_counter()
    with log.open("w") as out:
        out.write(f"$ {' '.join(step.argv)}\n")
        out.flush()
        # Its own session: the limit kills the step's whole process tree, not just its leader.
        proc = subprocess.Popen(
            step.argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            took = time.perf_counter() - t0
            with log.open("a") as tail:
                tail.write(f"\n[gpu-check] killed after its time limit of {limit:.0f} s\n")
            return StepOutcome(
                step.name,
                "timeout",
                took,
                limit,
                None,
                log,
                f"killed at its {limit:.0f} s limit; its figures so far are in the archive",
            )
    took = time.perf_counter() - t0
    if code == 0:
        return StepOutcome(step.name, "ok", took, limit, 0, log)
    return StepOutcome(
        step.name, "failed", took, limit, code, log, f"exit {code}: {_last_line(log)}"
    )


def run_steps(
    steps: Sequence[Step],
    log_dir: Path,
    env: dict[str, str],
    budget_s: float,
    on_done: Callable[[StepOutcome], None] = lambda outcome: None,
) -> list[StepOutcome]:
    """Every step in order, each whatever the others did, all within `budget_s` seconds;
    `on_done` hears of each as it ends."""
    t0 = time.perf_counter()
    outcomes = []
    for step in steps:
        outcomes.append(run_step(step, log_dir, env, budget_s - (time.perf_counter() - t0)))
        on_done(outcomes[-1])
    return outcomes
