"""A plan against the runs that followed it: did the projection hold, and if not, was it the
projection or the machine?

A run folder planned with `python -m bench.plan --out DIR` and then run with `python -m bench.run
--out DIR` holds both plan.json and the results. For each planned strategy this sets the
projected epoch beside the measured steady epochs (those after the first, which also pays each
padded length's first visit; the plan counts those separately), and the machine's speed during
the run against calibration: every run times its ceiling (the same step on one fixed batch)
at one length, and the plan's fit says what that step took when calibrating. A shared machine's
speed drifts (here, a fixed workload moved 27% within a minute on 2 shared cores); the ratio
tells such a drift from a projection that is wrong.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.plan.fit import LengthFit
from bench.result import RunResult

PLAN_FILE = "plan.json"
HOLDS_WITHIN = 0.20  # the share by which a measured epoch may differ and the plan still hold


@dataclass(frozen=True)
class PlanCheck:
    strategy: str
    runs: int  # finished runs of the strategy in the folder
    projected_epoch_s: float | None
    measured_epoch_s: float | None  # mean over the runs of their steady epochs' mean
    epochs_used: str  # which epochs were measured ("epochs 2-4", "epoch 1 (the only one)")
    # The run's ceiling step time over the calibrated step time at the same length, mean over
    # runs: 1.15 = the machine ran the same step 15% slower during the run. None: not comparable.
    machine_speed: float | None

    @property
    def error(self) -> float | None:
        """measured / projected - 1."""
        if not self.projected_epoch_s or self.measured_epoch_s is None:
            return None
        return self.measured_epoch_s / self.projected_epoch_s - 1

    @property
    def error_beyond_machine(self) -> float | None:
        """The error once the machine's own change of speed is divided out."""
        if self.error is None or not self.machine_speed:
            return None
        return (1 + self.error) / self.machine_speed - 1

    @property
    def holds(self) -> bool | None:
        return None if self.error is None else abs(self.error) <= HOLDS_WITHIN

    def sentence(self) -> str:
        if self.error is None:
            return f"{self.strategy}: no finished run to compare with the plan"
        s = (
            f"{self.strategy}: projected {self.projected_epoch_s:.1f} s an epoch, measured "
            f"{self.measured_epoch_s:.1f} s ({self.epochs_used}, {self.runs} run(s)): "
            f"{self.error:+.0%}"
        )
        if self.machine_speed is not None:
            s += (
                f"; the same fixed-batch step took {self.machine_speed:.2f}x its calibrated time "
                f"during the run (the machine's own speed), so {self.error_beyond_machine:+.0%} "
                "beyond that"
            )
        return s


@dataclass(frozen=True)
class PlanReport:
    checks: tuple[PlanCheck, ...]
    not_compared: str | None = None  # why the folder's plan says nothing about its runs

    def sentences(self) -> list[str]:
        if self.not_compared:
            return [f"{PLAN_FILE} not compared with the runs: {self.not_compared}"]
        return [c.sentence() for c in self.checks]


def read_plan(folder: str | Path) -> dict | None:
    """The folder's plan.json, or None where there is none (a folder run without a plan)."""
    path = Path(folder) / PLAN_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # a damaged plan is not the report's concern: the results still are


def _steady_epochs(r: RunResult) -> tuple[list[float], str]:
    times = [h.epoch_time_s for h in r.metrics.history if h.epoch_time_s is not None]
    if len(times) >= 2:
        return times[1:], f"epochs 2-{len(times)}" if len(times) > 2 else "epoch 2"
    return times, "epoch 1 (the only one, first visits included)"


def _machine_speed(r: RunResult, cal: dict, batch_size: int) -> float | None:
    """The run's ceiling step time over the plan's at the same length: the plan's own ceiling
    probe (timed as the run times its ceiling), moved to the run's length along the fit."""
    c = r.efficiency.ceiling if r.efficiency else None
    if not cal.get("train") or c is None or not c.steps or c.batch_size != batch_size:
        return None
    fit = LengthFit.from_dict(cal["train"])
    calibrated = fit.seconds(c.input_samples)
    if cal.get("probe_step_s") and cal.get("probe_samples"):
        at_probe = fit.seconds(cal["probe_samples"])
        if at_probe > 0:
            calibrated = cal["probe_step_s"] * calibrated / at_probe
    return (c.seconds / c.steps) / calibrated if calibrated > 0 else None


def check_plan(plan: dict, results: Sequence[RunResult]) -> PlanReport:
    """Each planned strategy's projection against the finished runs of the same configuration."""

    def used(get) -> set:
        return {v for r in results if r.config and (v := get(r.config)) is not None}

    mismatch = [
        f"{what} {plan.get(key)!r} in the plan, {', '.join(map(repr, sorted(theirs)))} in the runs"
        for what, key, theirs in (
            ("model", "model", used(lambda c: c.get("model"))),
            ("profile", "profile", used(lambda c: c.get("profile"))),
            ("batch size", "batch_size", used(lambda c: (c.get("train") or {}).get("batch_size"))),
        )
        if theirs and theirs != {plan.get(key)}
    ]
    if mismatch:
        return PlanReport((), "; ".join(mismatch))
    cals = {c["strategy"]: c for c in plan.get("calibrations", [])}
    checks = []
    for s in plan.get("strategies", []):
        name = s["strategy"]
        runs = [r for r in results if r.strategy == name and r.ok and r.metrics.history]
        measured, speeds, which = [], [], ""
        for r in runs:
            times, which = _steady_epochs(r)
            if times:
                measured.append(statistics.mean(times))
            speed = _machine_speed(r, cals.get(name, {}), plan.get("batch_size"))
            if speed is not None:
                speeds.append(speed)
        checks.append(
            PlanCheck(
                name,
                len(runs),
                (s.get("epoch_s") or {}).get("value"),
                statistics.mean(measured) if measured else None,
                which,
                statistics.mean(speeds) if speeds else None,
            )
        )
    return PlanReport(tuple(checks))


def check_folder(folder: str | Path, results: Sequence[RunResult]) -> PlanReport | None:
    """The folder's plan against `results`, or None where the folder has no plan."""
    plan = read_plan(folder)
    return None if plan is None else check_plan(plan, results)
