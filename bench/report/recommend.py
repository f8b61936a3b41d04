"""The recommendation line, computed from the data: which strategy to use and which needs least memory."""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.analysis import Analysis, StrategyStats
from bench.report.evidence import Evidence, what_it_shows
from bench.report.figures import RSS, SAMPLES_PER_S, SPEEDUP, VRAM_ALLOC, VRAM_NVML, Metric

DEFAULT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Recommendation:
    tolerance: float
    best: str | None  # strategy with the best mean CCC (among usable ones)
    best_ccc: float | None
    candidates: tuple[str, ...]  # usable strategies within `tolerance` of the best mean CCC
    fastest: str | None  # candidate with the highest mean training samples/s
    memory_pick: str | None  # candidate with the least peak memory
    memory_metric: Metric | None  # which memory figure ranked them
    caveats: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()  # degenerate or failed strategies left out, with reason
    withheld: tuple[str, ...] = ()  # why the evidence supports no recommendation at all


def _memory_metric(candidates: list[StrategyStats]) -> tuple[Metric | None, str | None]:
    """GPU memory when measured for every candidate, else host RSS with a caveat saying so."""
    for metric in (VRAM_NVML, VRAM_ALLOC):
        if all(c.mean(metric.key) is not None for c in candidates):
            caveat = (
                None
                if metric is VRAM_NVML
                else "NVML peak not measured; ranked by torch's allocator peak, which leaves out "
                "the CUDA context and the allocator's cache"
            )
            return metric, caveat
    if all(c.mean(RSS.key) is not None for c in candidates):
        return RSS, (
            "GPU memory was not measured on this machine; ranked by host peak RSS instead, "
            "which says little about what a GPU run needs"
        )
    return None, "no memory figure was measured for every candidate"


def recommend(
    analysis: Analysis, tolerance: float = DEFAULT_TOLERANCE, evidence: Evidence | None = None
) -> Recommendation:
    """The fastest strategy whose mean CCC is within `tolerance` of the best mean CCC, and the
    one among those with the least peak memory. Strategies with a degenerate run are not
    eligible: their CCC is not evidence. With `evidence`: nothing is recommended where it
    says the run cannot support it (a pipeline check, no strategy learnt), strategies that did
    not learn are not eligible, and speeds measured on different device models are not ranked."""
    blockers = tuple(evidence.blockers()) if evidence is not None else ()
    not_learned = dict(evidence.not_learned) if evidence is not None else {}
    excluded = []
    usable = []
    for s in analysis.ok_strategies:
        if s.mean("ccc_mean") is None:
            excluded.append(f"{s.name} (no CCC)")
        elif s.degenerate:
            excluded.append(f"{s.name} (degenerate run)")
        elif s.name in not_learned:
            excluded.append(f"{s.name} (did not learn: {not_learned[s.name]})")
        else:
            usable.append(s)
    excluded += [f"{s.name} (every run failed)" for s in analysis.strategies if not s.ok]
    if blockers or not usable:
        return Recommendation(
            tolerance,
            None,
            None,
            (),
            None,
            None,
            None,
            () if blockers else ("no strategy produced a usable CCC",),
            tuple(excluded),
            blockers,
        )
    top = max(usable, key=lambda s: s.mean("ccc_mean"))  # type: ignore[arg-type,return-value]
    best_ccc = float(top.mean("ccc_mean"))  # type: ignore[arg-type]
    # A tiny slack so that "exactly the tolerance below" counts as within it despite rounding.
    cands = [s for s in usable if s.mean("ccc_mean") >= best_ccc - tolerance - 1e-12]  # type: ignore[operator]
    caveats = []
    models = evidence.device_models if evidence is not None else ()
    timed = [s for s in cands if s.mean(SAMPLES_PER_S.key) is not None]
    fastest = max(timed, key=lambda s: s.mean(SAMPLES_PER_S.key)).name if timed else None  # type: ignore[arg-type,return-value]
    if len(models) > 1:
        # A mean over runs on two GPU models ranks the machines, not the strategies.
        fastest = None
        caveats.append(
            f"the runs come from {len(models)} device models ({', '.join(models)}): speed and "
            "memory are not ranked across them; render each model's runs on their own"
        )
    elif fastest is None:
        caveats.append("no candidate has a throughput figure")
    metric, caveat = _memory_metric(cands)
    if caveat and len(models) < 2:
        caveats.append(caveat)
    memory_pick = (
        min(cands, key=lambda s: s.mean(metric.key)).name  # type: ignore[arg-type,return-value]
        if metric is not None and len(models) < 2
        else None
    )
    return Recommendation(
        tolerance,
        top.name,
        best_ccc,
        tuple(s.name for s in cands),
        fastest,
        memory_pick,
        metric,
        tuple(caveats),
        tuple(excluded),
    )


def sentences(
    rec: Recommendation, analysis: Analysis, evidence: Evidence | None = None
) -> list[str]:
    """The recommendation as plain sentences (no markup; renderers add emphasis)."""
    if rec.withheld:
        out = ["No recommendation: " + "; ".join(rec.withheld) + "."]
        if evidence is not None:
            out += ["What this run shows: " + " ".join(what_it_shows(analysis, evidence))]
        return out
    if rec.best is None:
        return ["No recommendation: " + "; ".join(rec.caveats) + "."]
    out = []
    if rec.fastest is not None:
        s = analysis.get(rec.fastest)
        assert s is not None
        speed = SAMPLES_PER_S.format(s.mean(SAMPLES_PER_S.key))
        up = s.mean(SPEEDUP.key)
        vs_full = f", {SPEEDUP.format(up)} {analysis.baseline}" if up is not None else ""
        if vs_full and evidence is not None and evidence.collapsed:
            vs_full += ", which collapsed"
        out.append(
            f"Use {rec.fastest}: the fastest strategy ({speed} samples/s{vs_full}) whose mean CCC "
            f"({s.mean('ccc_mean'):.3f}) is within {rec.tolerance:g} of the best "
            f"({rec.best}, {rec.best_ccc:.3f})."
        )
    else:
        out.append(
            f"Best mean test CCC: {rec.best} ({rec.best_ccc:.3f}); within {rec.tolerance:g} of "
            f"it: {', '.join(rec.candidates)}."
        )
    if rec.memory_pick is not None and rec.memory_metric is not None:
        m = rec.memory_metric
        s = analysis.get(rec.memory_pick)
        assert s is not None
        out.append(
            f"Least memory within that tolerance: {rec.memory_pick} "
            f"({m.label} {m.format(s.mean(m.key))} {m.unit})."
        )
    out += [f"Caveat: {c}." for c in rec.caveats]
    if rec.excluded:
        out.append("Not eligible: " + ", ".join(rec.excluded) + ".")
    return out
