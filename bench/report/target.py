"""Time, samples and GPU energy until validation CCC first reaches a target quality.

A strategy twice as fast per step that needs three times the epochs is slower where it matters
(MLPerf times training to a target quality, not per step). The target is a report-time choice:
by default a stated share of the baseline's (`full`'s) best validation CCC in the same sweep,
backbone and replicate; `--target-ccc` sets one for every run. Computed from each run's
per-epoch history (`metrics.history`); the test set never takes part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.errors import BenchError
from bench.report.frame import Replicate, replicate_of
from bench.report.rows import BASELINE, baseline_of
from bench.result import RunResult, figure

DEFAULT_TARGET_SHARE = 0.95


@dataclass(frozen=True)
class Target:
    """What "reached" means: `ccc` for every run when given (--target-ccc), else `share` of the
    baseline's best validation CCC at the same replicate."""

    ccc: float | None = None
    share: float = DEFAULT_TARGET_SHARE

    def describe(self) -> str:
        if self.ccc is not None:
            return f"validation CCC {self.ccc:g} (--target-ccc)"
        return f"{self.share:.0%} of {BASELINE}'s best validation CCC at the same seed"


DEFAULT_TARGET = Target()

TARGET_CCC_HELP = (
    "the validation CCC whose first reaching is timed (time, samples and GPU energy to "
    # argparse formats help with %: the share's percent sign is doubled
    f"target); default: {100 * DEFAULT_TARGET_SHARE:.0f}%% of {BASELINE}'s best validation CCC at "
    "the same seed"
)


def target_from(ccc: float | None) -> Target:
    """The target of `--target-ccc` (None: the default share of the baseline's)."""
    if ccc is not None and not 0 < ccc <= 1:  # also refuses NaN
        raise BenchError(f"--target-ccc must be a CCC in (0, 1], not {ccc}")
    return Target(ccc=ccc)


@dataclass(frozen=True)
class ToTarget:
    """One run's cost to reach its target; figures None when it was not reached (`why`)."""

    target_ccc: float | None = figure(
        "target", "", True, ".3f", mark_best=False, help="the validation CCC target of this run"
    )
    time_to_target_s: float | None = figure(
        "time to target",
        "s",
        False,
        ".1f",
        help="wall time from the start of training (cache build included) until validation CCC "
        "first reached the target; mean over the seeds that reached it (k/n: how many did)",
        absent="not reached",
    )
    samples_to_target: float | None = figure(
        "samples to target",
        "",
        False,
        "count",
        help="training samples seen until validation CCC first reached the target (epochs x "
        "training clips)",
        absent="not reached",
    )
    energy_to_target_j: float | None = figure(
        "energy to target",
        "J",
        False,
        ".0f",
        help="GPU energy until the target: the run's NVML energy per epoch x epochs needed "
        "(the cache build's energy spread over the epochs)",
        absent="not reached",
    )
    epoch: int | None = None  # the first epoch (0-based, as in the history) at or above target
    why: str | None = None  # "not reached in N epochs", "no target: ..."

    @property
    def reached(self) -> bool:
        return self.epoch is not None


def _best_val(r: RunResult) -> float | None:
    vals = [h.val_ccc_mean for h in (r.metrics.history if r.metrics else ())]
    vals = [v for v in vals if v is not None]
    if vals:
        return max(vals)
    return r.metrics.val_ccc_best if r.metrics else None


def _target_of(
    r: RunResult, target: Target, baselines: dict[tuple[str, Replicate], RunResult]
) -> tuple[float | None, str | None]:
    if target.ccc is not None:
        return target.ccc, None
    base_name = baseline_of(r.strategy)
    rep = replicate_of(r)
    base = baselines.get((base_name, rep))
    if base is None:
        return None, f"no target: no successful {base_name} run at {rep}"
    best = _best_val(base)
    if best is None or best <= 0:
        shown = "none" if best is None else f"{best:.3f}"
        return None, (
            f"no target: {base_name}'s best validation CCC at {rep} is {shown} (not above 0: "
            "a share of it is no quality)"
        )
    return target.share * best, None


def to_target(
    results: Sequence[RunResult], target: Target
) -> dict[tuple[str, Replicate], ToTarget]:
    """Each successful run's cost to its target, keyed by (row name, replicate)."""
    ok = [r for r in results if r.ok]
    baselines = {
        (r.strategy, replicate_of(r)): r for r in ok if r.strategy == baseline_of(r.strategy)
    }
    out = {}
    for r in ok:
        goal, why = _target_of(r, target, baselines)
        key = (r.strategy, replicate_of(r))
        if goal is None:
            out[key] = ToTarget(why=why)
            continue
        history = r.metrics.history if r.metrics else ()
        n_train = int((r.data.n_utterances or {}).get("train", 0)) if r.data else 0
        energy = r.efficiency.energy if r.efficiency else None
        per_epoch = energy.energy_j_per_epoch if energy is not None else None
        for k, h in enumerate(history):
            if h.val_ccc_mean is None or h.val_ccc_mean < goal:
                continue
            out[key] = ToTarget(
                goal,
                h.elapsed_s,
                float((k + 1) * n_train) if n_train else None,
                None if per_epoch is None else (k + 1) * per_epoch,
                h.epoch,
            )
            break
        else:
            out[key] = ToTarget(goal, why=f"not reached in {len(history)} epochs")
    return out


@dataclass(frozen=True)
class TargetSummary:
    """A strategy's runs against their targets."""

    reached: int  # runs that reached their target
    runs: int  # successful runs that had a target
    why: str | None = None  # why none had a target, or none reached it

    @property
    def label(self) -> str:
        return f"{self.reached}/{self.runs}"


def summarize_targets(
    per_run: dict[tuple[str, Replicate], ToTarget], strategy: str
) -> TargetSummary:
    mine = [t for (s, _), t in per_run.items() if s == strategy]
    with_target = [t for t in mine if t.target_ccc is not None]
    reached = sum(1 for t in with_target if t.reached)
    why = None
    if not with_target:
        why = next((t.why for t in mine if t.why), "no run")
    elif not reached:
        why = "not reached"
    return TargetSummary(reached, len(with_target), why)
