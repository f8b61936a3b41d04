"""Follow submitted runs until every one has a result, showing progress.

A run is finished when its result file carries this submission's job id (the task writes it,
whatever happened to the run). A task the scheduler reports ended without writing one gets a
result here (`lost_task_result`), after a grace period (GRACE_S).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rich.console import Console
from rich.markup import escape

from bench.launch.isolated import PlannedRun, outcome_line, sweep_progress
from bench.launch.slurm import ACTIVE_STATES
from bench.launch.task import lost_task_result
from bench.result import RunResult
from bench.result.store import read_result, write_result

# Seconds a task may be over, per its scheduler, before a missing result is taken as lost:
# on a shared file system the task's result can become visible a moment after its end.
GRACE_S = 10.0


class TaskHandle(Protocol):
    """A submitted task: its scheduler job id (None while only queued here), state, log."""

    @property
    def job_id(self) -> str | None: ...

    def state(self) -> str: ...

    @property
    def log(self) -> Path | None: ...


@dataclass(frozen=True)
class Followed:
    index: int  # position in the sweep's configs
    run: PlannedRun  # its config, result file and label
    handle: TaskHandle


def own_result(item: Followed) -> RunResult | None:
    """The result at the item's path when this submission's task wrote it (not an older one)."""
    job_id = item.handle.job_id
    result = read_result(item.run.path)
    if result is None or job_id is None:
        return None
    return result if (result.launch or {}).get("job_id") == job_id else None


def follow(
    items: list[Followed],
    console: Console,
    launcher: str,
    poll: Callable[[], None] = lambda: None,
    interval_s: float = 2.0,
    grace_s: float | None = None,
    summary_every_s: float = 60.0,
) -> dict[int, RunResult]:
    """Results of `items` by index, once every task has ended. `poll` runs before each look
    (it refreshes states, or starts queued runs on free devices)."""
    grace_s = GRACE_S if grace_s is None else grace_s
    results: dict[int, RunResult] = {}
    ended_at: dict[int, float] = {}
    live = console.is_terminal and not console.quiet
    last_summary = time.monotonic()
    with sweep_progress(console) as bar:
        overall = bar.add_task(launcher, total=len(items))
        while True:
            poll()
            states: Counter[str] = Counter()
            for item in items:
                if item.index in results:
                    continue
                result = own_result(item)
                state = item.handle.state()
                if result is None and state not in ACTIVE_STATES:
                    first = ended_at.setdefault(item.index, time.monotonic())
                    if time.monotonic() - first >= grace_s:
                        launch = {
                            "launcher": launcher,
                            "job_id": item.handle.job_id,
                            "log": None if item.handle.log is None else str(item.handle.log),
                        }
                        result = lost_task_result(item.run.cfg, launch, state)
                        write_result(item.run.path, result)
                if result is None:
                    states[state] += 1
                    continue
                results[item.index] = result
                launch = result.launch or {}
                where = f"({launcher} job {launch.get('job_id')}"
                where += f" on {launch['host']})" if launch.get("host") else ")"
                where = f" [dim]{escape(where)}[/dim]"
                console.print(
                    f"[{len(results)}/{len(items)}] " + outcome_line(item.run.label, result) + where
                )
                bar.advance(overall)
            if len(results) == len(items):
                return results
            summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items()))
            bar.update(overall, description=f"{launcher}: {summary}")
            if not live and time.monotonic() - last_summary >= summary_every_s:
                console.print(f"{launcher}: {len(results)}/{len(items)} finished; {summary}")
                last_summary = time.monotonic()
            time.sleep(interval_s)
