"""What a run folder's results can and cannot support: did any strategy learn, is the profile a
pipeline check, did the baseline collapse, which figures lie outside their possible range,
which speed rankings contradict the epoch times, which runs shared a busy machine.

The recommendation (bench/report/recommend.py) speaks only where this says the evidence holds;
the header and the table flag the rest where the figures are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.report.analysis import Analysis
from bench.report.figures import EPOCH_TIME, HARNESS, SAMPLES_PER_S
from bench.report.frame import Replicate, device_model, replicate_of
from bench.report.rows import is_baseline
from bench.result import RunResult
from bench.stats import against_constant

# Profiles that check the pipeline, not the strategies (bench/config.py `Profile.pipeline_check`;
# the report does not import the config, which loads torch; tests/test_verdict.py keeps the two
# in step).
PIPELINE_CHECK_PROFILES = frozenset({"smoke"})
# Below this mean test CCC a strategy has not learnt anything a reader should act on.
NEAR_ZERO_CCC = 0.1
# The ceiling is the same step without loader or meter: measured/ceiling can exceed 1 only by
# noise; beyond this, the ceiling was timed on a busy machine or over too short a time.
HARNESS_MAX = 1.5
# A run is on a busy machine when other processes took more than this share of all CPUs' time
# (or, where that was not measured, when the 1-minute load average exceeded 1.5 per CPU).
BUSY_OTHERS_SHARE = 0.2
BUSY_LOAD_PER_CPU = 1.5
# Two strategies' samples/s and epoch times contradict each other when one is faster by more than
# this factor per sample and also slower by more than this factor per epoch.
CONTRADICTION = 1.1


@dataclass(frozen=True)
class Evidence:
    learned: tuple[str, ...]  # strategies whose test CCC shows learning
    not_learned: tuple[tuple[str, str], ...]  # (strategy, why its CCC is no evidence)
    pipeline_check: str | None  # the profile, when it is a pipeline check
    device_models: tuple[str, ...]  # distinct device models of the successful runs
    baseline_collapsed: tuple[tuple[str, str], ...]  # (baseline row, why) when others learnt
    flags: tuple[tuple[str, str, str], ...]  # (strategy, figure key, why it cannot be right)
    contradictions: tuple[str, ...]  # speed rankings that epoch times contradict
    busy: tuple[tuple[str, Replicate, str], ...]  # (strategy, replicate, what kept it busy)

    def flag(self, strategy: str, key: str) -> str | None:
        return "; ".join(w for s, k, w in self.flags if s == strategy and k == key) or None

    @property
    def busy_strategies(self) -> frozenset[str]:
        return frozenset(s for s, _, _ in self.busy)

    @property
    def collapsed(self) -> frozenset[str]:
        return frozenset(b for b, _ in self.baseline_collapsed)

    def blockers(self) -> list[str]:
        """Why no strategy may be recommended (empty: the evidence allows a recommendation)."""
        out = []
        if self.pipeline_check:
            out.append(
                f"the {self.pipeline_check} profile checks the pipeline, not the strategies "
                "(a tiny random-init model for a few steps)"
            )
        if not self.learned:
            out.append(
                f"no strategy learnt: every mean test CCC is below {NEAR_ZERO_CCC:g} or not "
                "significantly above a constant predictor's"
            )
        return out


def _learned(analysis: Analysis, results: Sequence[RunResult]) -> tuple[list, list]:
    learned, not_learned = [], []
    for s in analysis.ok_strategies:
        ccc = s.mean("ccc_mean")
        if ccc is None:
            not_learned.append((s.name, "no test CCC"))
            continue
        if ccc < NEAR_ZERO_CCC:
            not_learned.append((s.name, f"mean test CCC {ccc:.3f} < {NEAR_ZERO_CCC:g}"))
            continue
        tests = []
        for r in results:
            p = r.predictions
            if r.strategy != s.name or not r.ok or p is None or len(p.pred) < 2:
                continue
            try:
                b = against_constant(
                    np.asarray(p.pred, dtype=np.float64),
                    np.asarray(p.target, dtype=np.float64),
                    seed=int(r.seed),
                )
            except ValueError:
                continue
            tests.append(b.significant and b.delta > 0)
        if tests and not any(tests):
            not_learned.append(
                (s.name, "test CCC not significantly above a constant predictor's in any run")
            )
            continue
        learned.append(s.name)
    return learned, not_learned


def _busy(results: Sequence[RunResult]) -> list[tuple[str, Replicate, str]]:
    out = []
    for r in results:
        load = r.efficiency.load if r.ok and r.efficiency else None
        what = None
        if load is None:
            continue
        if load.others_cpu_share is not None:
            if load.others_cpu_share > BUSY_OTHERS_SHARE:
                what = f"other processes used {load.others_cpu_share:.0%} of the CPUs"
        elif (
            load.loadavg_1m_max
            and load.cpus
            and load.loadavg_1m_max > BUSY_LOAD_PER_CPU * load.cpus
        ):
            what = f"load average up to {load.loadavg_1m_max:.1f} on {load.cpus} CPUs"
        if what:
            out.append((r.strategy, replicate_of(r), what))
    return out


def _contradictions(analysis: Analysis) -> tuple[list[str], list[tuple[str, str, str]]]:
    timed = [
        (s.name, s.mean(SAMPLES_PER_S.key), s.mean(EPOCH_TIME.key)) for s in analysis.ok_strategies
    ]
    timed = [(n, v, e) for n, v, e in timed if v and e]
    lines, flags = [], []
    for a, va, ea in timed:
        for b, vb, eb in timed:
            if va > CONTRADICTION * vb and ea > CONTRADICTION * eb:
                lines.append(
                    f"{a} trains {va / vb:.2f}x more samples/s than {b} yet its epochs take "
                    f"{ea / eb:.2f}x longer: time outside the steady-state steps (warm-up, new "
                    "input shapes, stalls, evaluation) decides which one finishes first"
                )
                flags.append((a, SAMPLES_PER_S.key, f"epochs slower than {b}'s"))
    return lines, flags


def weigh(analysis: Analysis, results: Sequence[RunResult]) -> Evidence:
    """What the results support, computed from the stored results only."""
    learned, not_learned = _learned(analysis, results)
    profiles = {str(r.profile) for r in results}
    pipeline = next((p for p in sorted(profiles) if p in PIPELINE_CHECK_PROFILES), None)
    models = tuple(dict.fromkeys(m for r in results if r.ok if (m := device_model(r))))
    collapsed = []
    if learned:
        why = dict(not_learned)
        for s in analysis.ok_strategies:
            if is_baseline(s.name) and (s.degenerate or s.name in why):
                reasons = [r for _, r in s.degenerate] or [why[s.name]]
                collapsed.append((s.name, "; ".join(dict.fromkeys(reasons))))
    flags = []
    for s in analysis.ok_strategies:
        h = s.mean(HARNESS.key)
        if h is not None and h > HARNESS_MAX:
            flags.append(
                (
                    s.name,
                    HARNESS.key,
                    f"above {HARNESS_MAX:g}: impossible for a real speed-up; the ceiling was "
                    "timed low (busy machine or too few steps)",
                )
            )
    lines, speed_flags = _contradictions(analysis)
    return Evidence(
        tuple(learned),
        tuple(not_learned),
        pipeline,
        models,
        tuple(collapsed),
        tuple(flags + speed_flags),
        tuple(lines),
        tuple(_busy(results)),
    )


def what_it_shows(analysis: Analysis, evidence: Evidence) -> list[str]:
    """What a run that supports no recommendation does show, in sentences."""
    ok = analysis.ok_strategies
    failed = [s.name for s in analysis.strategies if not s.ok]
    out = [
        f"{len(ok)} of {len(analysis.strategies)} strategies ran end to end "
        f"({analysis.spread}): loading, training, evaluation, measurement and this report work"
        + (f"; {', '.join(failed)} failed" if failed else "")
        + "."
    ]
    if evidence.pipeline_check or not evidence.learned:
        out.append(
            "Their throughput and memory figures describe this machine and this model, not which "
            "strategy to use; for that, run a profile whose baseline learns (quick, study)."
        )
    return out


def warnings(evidence: Evidence) -> list[str]:
    """The header's warnings from the evidence, the collapsed baseline first: it changes the
    meaning of every relative figure."""
    out = [
        f"BASELINE COLLAPSED: {b} learnt nothing ({why}). Every speed-up and ΔCCC in this report "
        f"is relative to it and marked so; compare the strategies' own figures instead."
        for b, why in evidence.baseline_collapsed
    ]
    out += [f"Speed ranking contradicted: {line}." for line in evidence.contradictions]
    for s, key, why in evidence.flags:
        if key == HARNESS.key:
            out.append(f"{s}: harness efficiency {why}.")
    out += [
        f"Busy machine during {s} {rep}: {what}; its timings measure the machine as much as the "
        "strategy."
        for s, rep, what in evidence.busy
    ]
    return out
