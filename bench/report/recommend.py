"""The recommendation line, computed from the data: which strategy to use and which needs least memory."""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.analysis import Analysis, StrategyStats
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


def recommend(analysis: Analysis, tolerance: float = DEFAULT_TOLERANCE) -> Recommendation:
    """The fastest strategy whose mean CCC is within `tolerance` of the best mean CCC, and the
    one among those with the least peak memory. Strategies with a degenerate run are not
    eligible: their CCC is not evidence."""
    excluded = []
    usable = []
    for s in analysis.ok_strategies:
        if s.mean("ccc_mean") is None:
            excluded.append(f"{s.name} (no CCC)")
        elif s.degenerate:
            excluded.append(f"{s.name} (degenerate run)")
        else:
            usable.append(s)
    excluded += [f"{s.name} (every run failed)" for s in analysis.strategies if not s.ok]
    if not usable:
        return Recommendation(
            tolerance,
            None,
            None,
            (),
            None,
            None,
            None,
            ("no strategy produced a usable CCC",),
            tuple(excluded),
        )
    top = max(usable, key=lambda s: s.mean("ccc_mean"))  # type: ignore[arg-type,return-value]
    best_ccc = float(top.mean("ccc_mean"))  # type: ignore[arg-type]
    # A tiny slack so that "exactly the tolerance below" counts as within it despite rounding.
    cands = [s for s in usable if s.mean("ccc_mean") >= best_ccc - tolerance - 1e-12]  # type: ignore[operator]
    caveats = []
    timed = [s for s in cands if s.mean(SAMPLES_PER_S.key) is not None]
    fastest = max(timed, key=lambda s: s.mean(SAMPLES_PER_S.key)).name if timed else None  # type: ignore[arg-type,return-value]
    if fastest is None:
        caveats.append("no candidate has a throughput figure")
    metric, caveat = _memory_metric(cands)
    if caveat:
        caveats.append(caveat)
    memory_pick = (
        min(cands, key=lambda s: s.mean(metric.key)).name if metric is not None else None  # type: ignore[arg-type,return-value]
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


def sentences(rec: Recommendation, analysis: Analysis) -> list[str]:
    """The recommendation as plain sentences (no markup; renderers add emphasis)."""
    if rec.best is None:
        return ["No recommendation: " + "; ".join(rec.caveats) + "."]
    out = []
    if rec.fastest is not None:
        s = analysis.get(rec.fastest)
        assert s is not None
        speed = SAMPLES_PER_S.format(s.mean(SAMPLES_PER_S.key))
        up = s.mean(SPEEDUP.key)
        vs_full = f", {SPEEDUP.format(up)} {analysis.baseline}" if up is not None else ""
        out.append(
            f"Use {rec.fastest}: the fastest strategy ({speed} samples/s{vs_full}) whose mean CCC "
            f"({s.mean('ccc_mean'):.3f}) is within {rec.tolerance:g} of the best "
            f"({rec.best}, {rec.best_ccc:.3f})."
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
