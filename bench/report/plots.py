"""Plots: matplotlib figures saved as PNG (for report.md) and returned as inline SVG (for HTML).

Uses matplotlib's object API (`Figure`), not pyplot: no global backend switch, no state shared
with whoever imported pyplot before us.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report.analysis import Analysis, StrategyStats
from bench.report.figures import (
    CCC_MEAN,
    EPOCH_TIME,
    PARAMS,
    RSS,
    SAMPLES_PER_S,
    SPEEDUP,
    TIME_TO_TARGET,
    VRAM_ALLOC,
    VRAM_NVML,
    Metric,
)
from bench.report.lr_search import LrSearch
from bench.report.pareto import pareto_front
from bench.result import RunResult

_RC = {
    "svg.fonttype": "none",  # real text in the SVG: smaller, selectable, findable by tests
    "svg.hashsalt": "serbench",  # deterministic ids, so re-rendering gives the same file
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
PALETTE = (
    "#3366cc",
    "#dc3912",
    "#ff9900",
    "#109618",
    "#990099",
    "#0099c6",
    "#dd4477",
    "#66aa00",
    "#b82e2e",
    "#316395",
)


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: plots/<name>.png
    title: str
    caption: str
    svg: str  # markup to inline in HTML (ids prefixed, no XML prolog)
    png: Path


def _text(s: str) -> str:
    """A data string as literal matplotlib text: `$` would start mathtext, a leading `_` hides a
    legend entry."""
    s = s.replace("$", r"\$")
    return "\u200b" + s if s.startswith("_") else s


def colors(analysis: Analysis) -> dict[str, str]:
    """One colour per strategy, the same in every plot."""
    return {s.name: PALETTE[i % len(PALETTE)] for i, s in enumerate(analysis.strategies)}


def _better(m: Metric) -> str:
    return f"{m.axis_label}, {'higher' if m.higher_is_better else 'lower'} is better"


def inline_svg(svg: str, prefix: str) -> str:
    """Matplotlib SVG -> markup that can sit next to other plots in one page: no XML prolog, and
    every id (clip paths, markers) prefixed so two figures never share one."""
    svg = svg[svg.index("<svg") :]
    # The RDF metadata block only names namespaces by URL; an inline plot does not need it.
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.DOTALL)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    if "<script" in svg.lower():  # matplotlib escapes text; this is a belt to those braces
        raise ValueError("refusing to inline an SVG that contains a script element")
    return svg


def _over(analysis: Analysis) -> str:
    """What a point or bar averages: "seeds", or "seeds and folds" for a cross-validated corpus."""
    return "seeds and folds" if analysis.folds else "seeds"


def _save(fig, out_dir: Path, name: str, title: str, caption: str) -> Plot:
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig.tight_layout()
        png = out_dir / f"{name}.png"
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return Plot(name, title, caption, inline_svg(buf.getvalue(), name), png)


def _figure(width: float = 6.4, height: float = 4.0):
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height))
        ax = fig.add_subplot()
    return fig, ax


def _no_data(ax, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="#777")


def _sd(s: StrategyStats, key: str) -> float:
    f = s.figures.get(key)
    return f.sd if f is not None and f.sd is not None else 0.0


def pareto_plot(
    analysis: Analysis, x: Metric, y: Metric, out_dir: Path, name: str, title: str
) -> Plot:
    """y against x for every strategy (means, sd bars), with the Pareto front of the two
    figures drawn through the strategies no other strategy beats on both."""
    import matplotlib

    pal = colors(analysis)
    pts = [
        s for s in analysis.ok_strategies if s.mean(x.key) is not None and s.mean(y.key) is not None
    ]
    with matplotlib.rc_context(_RC):
        fig, ax = _figure()
        for i, s in enumerate(pts):
            ax.errorbar(
                s.mean(x.key),
                s.mean(y.key),
                xerr=_sd(s, x.key),
                yerr=_sd(s, y.key),
                fmt="o",
                color=pal[s.name],
                capsize=3,
                ms=6,
            )
            ax.annotate(
                _text(s.name),
                (s.mean(x.key), s.mean(y.key)),
                textcoords="offset points",
                xytext=(6, 5 if i % 2 == 0 else -12),  # alternate: neighbours' labels don't collide
                fontsize=8,
            )
        front = pareto_front(
            [(s.mean(x.key), s.mean(y.key)) for s in pts], (x.higher_is_better, y.higher_is_better)
        )
        if front:
            on = sorted((pts[i] for i in front), key=lambda s: s.mean(x.key))
            ax.plot(
                [s.mean(x.key) for s in on],
                [s.mean(y.key) for s in on],
                "--",
                color="#555",
                lw=1.2,
                zorder=0,
                label="Pareto front",
            )
            ax.scatter(
                [s.mean(x.key) for s in on],
                [s.mean(y.key) for s in on],
                s=150,
                facecolors="none",
                edgecolors="#555",
                zorder=0,
            )
            ax.legend(loc="best", fontsize=8)
        else:
            _no_data(ax, "no strategy has both figures")
        ax.set_xlabel(_better(x))
        ax.set_ylabel(_better(y))
        ax.set_title(title)
    on_front = ", ".join(pts[i].name for i in front) or "none"
    caption = f"Points: mean over {_over(analysis)}, bars: ±1 sd. On the Pareto front: {on_front}."
    return _save(fig, out_dir, name, title, caption)


def memory_metric(analysis: Analysis) -> Metric:
    """The memory figure to plot: NVML when any run measured it, then the allocator, then RSS."""
    for m in (VRAM_NVML, VRAM_ALLOC):
        if any(s.mean(m.key) is not None for s in analysis.ok_strategies):
            return m
    return RSS


def bar_plot(
    analysis: Analysis, metric: Metric, out_dir: Path, name: str, title: str, log: bool = False
) -> Plot:
    """One horizontal bar per strategy (mean, ±1 sd); log scale for figures spanning decades."""
    import matplotlib

    pal = colors(analysis)
    pts = [s for s in analysis.ok_strategies if s.mean(metric.key) is not None]
    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.4, 0.9 + 0.45 * max(len(pts), 2))
        if pts:
            ys = list(range(len(pts)))[::-1]
            vals = [s.mean(metric.key) for s in pts]
            ax.barh(
                ys,
                vals,
                xerr=[_sd(s, metric.key) for s in pts],
                color=[pal[s.name] for s in pts],
                capsize=3,
                height=0.6,
            )
            ax.set_yticks(ys, [_text(s.name) for s in pts])
            for y, s, v in zip(ys, pts, vals, strict=True):
                extra = ""
                if metric is SAMPLES_PER_S and s.mean(SPEEDUP.key) is not None:
                    extra = f"  ({SPEEDUP.format(s.mean(SPEEDUP.key))} {analysis.baseline})"
                ax.annotate(
                    f"{metric.format(v)}{extra}",
                    (v + _sd(s, metric.key), y),  # right of the whisker, not on it
                    textcoords="offset points",
                    xytext=(4, -3),
                    fontsize=8,
                )
            if log:
                ax.set_xscale("log")
                # Bars grow from a round decade under the smallest value, not from an arbitrary edge.
                ax.set_xlim(10 ** math.floor(math.log10(max(min(vals), 1.0))), max(vals) * 6)
            else:
                ax.set_xlim(
                    0, max(v + _sd(s, metric.key) for s, v in zip(pts, vals, strict=True)) * 1.35
                )
        else:
            _no_data(ax, f"{metric.label} not measured")
        unit = "count" if metric is PARAMS else metric.unit
        ax.set_xlabel(
            f"{metric.label} ({unit}{', log scale' if log else ''}), "
            f"{'higher' if metric.higher_is_better else 'lower'} is better"
        )
        ax.set_ylabel("strategy")
        ax.grid(axis="y", alpha=0)
        ax.set_title(title)
    return _save(fig, out_dir, name, title, f"Bars: mean over {_over(analysis)}, whiskers: ±1 sd.")


def val_curve_plot(analysis: Analysis, results: Sequence[RunResult], out_dir: Path) -> Plot:
    """Validation CCC after each epoch against wall-clock time since the run started (cache
    build included): how soon each strategy gets good, one line per seed, with the quality
    target of the time-to-target columns (one dotted line per distinct target)."""
    import matplotlib

    pal = colors(analysis)
    title = "Validation CCC vs wall-clock time"
    targets = sorted(
        {round(t.target_ccc, 6) for t in analysis.to_target.values() if t.target_ccc is not None}
    )
    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.4, 4.6)
        labelled: set[str] = set()
        for r in results:
            hist = r.metrics.history if r.metrics else ()
            pts = [
                (h.elapsed_s, h.val_ccc_mean)
                for h in hist
                if h.elapsed_s is not None and h.val_ccc_mean is not None
            ]
            if not r.ok or not pts:
                continue
            name = r.strategy
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                "o-",
                color=pal.get(name, "#777"),
                ms=3.5,
                lw=1.3,
                alpha=0.85,
                label=_text(name) if name not in labelled else None,
            )
            labelled.add(name)
        for i, t in enumerate(targets):
            label = f"target{'s' if len(targets) > 1 else ''}" if i == 0 else None
            ax.axhline(t, color="#555", ls=":", lw=1, label=label)
        if labelled:  # below the axes: curves fill the whole plot area
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
        else:
            _no_data(ax, "no run recorded a validation history")
        ax.set_xlabel("wall-clock since the run started (s, cache build included)")
        ax.set_ylabel("validation CCC, mean of dimensions (unitless)")
        ax.set_title(title)
    unit = "run" if analysis.folds else "seed"
    caption = f"One line per {unit}, one point per epoch. Target: {analysis.target.describe()}"
    if targets:
        caption += f" ({', '.join(f'{t:.3f}' for t in targets)})."
        reached = []
        for s in analysis.ok_strategies:
            t, mean = s.target, s.mean(TIME_TO_TARGET.key)
            if t is None or not t.runs:
                continue
            reached.append(
                f"{s.name} not reached ({t.label})"
                if mean is None
                else f"{s.name} {mean:.1f} s ({t.label})"
            )
        caption += f" Time to target (mean over the {unit}s that reached it): {', '.join(reached)}."
    else:
        why = sorted({t.why for t in analysis.to_target.values() if t.why})
        caption += f": none ({'; '.join(why) or 'no run'})."
    return _save(fig, out_dir, "val_ccc_vs_time", title, caption)


def lr_sensitivity_plot(search: LrSearch, analysis: Analysis, out_dir: Path) -> Plot:
    """Validation CCC against learning rate, one line per strategy (mean over seeds, sd bars),
    the chosen rate marked: how sensitive each strategy is to its rate."""
    import matplotlib

    pal = colors(analysis)
    title = "Validation CCC vs learning rate"
    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.4, 4.6)
        drawn = False
        for name in search.strategies:
            pts = [
                p
                for p in search.points
                if p.strategy == name and p.lr is not None and p.val_ccc.mean is not None
            ]
            if not pts:
                continue
            color = pal.get(name, "#777")
            ax.errorbar(
                [p.lr for p in pts],
                [p.val_ccc.mean for p in pts],
                yerr=[p.val_ccc.sd or 0.0 for p in pts],
                fmt="o-",
                color=color,
                ms=4,
                lw=1.3,
                capsize=3,
                label=_text(name),
            )
            best = search.chosen_point(name)
            if best is not None and best.lr is not None and best.val_ccc.mean is not None:
                ax.plot([best.lr], [best.val_ccc.mean], "*", color=color, ms=13, mec="#222")
            drawn = True
        if drawn:
            ax.set_xscale("log")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
        else:
            _no_data(ax, "no grid point finished with a validation CCC")
        ax.set_xlabel("backbone learning rate (log scale)")
        ax.set_ylabel("best validation CCC, mean of dimensions (unitless)")
        ax.set_title(title)
    caption = (
        f"One line per strategy; points: mean over {_over(analysis)}, bars: ±1 sd; ★: the rate "
        f"chosen (best mean validation CCC; the test set takes no part). The search ran "
        f"{search.runs} runs, {search.wall_s:.0f} s of training wall time in all."
    )
    return _save(fig, out_dir, "val_ccc_vs_lr", title, caption)


def all_plots(
    analysis: Analysis,
    results: Sequence[RunResult],
    out_dir: Path,
    search: LrSearch | None = None,
) -> list[Plot]:
    out_dir.mkdir(parents=True, exist_ok=True)
    mem = memory_metric(analysis)
    mem_title = "CCC vs peak GPU memory" if mem is not RSS else "CCC vs peak host memory (no GPU)"
    return [
        pareto_plot(
            analysis, EPOCH_TIME, CCC_MEAN, out_dir, "ccc_vs_epoch_time", "CCC vs epoch time"
        ),
        pareto_plot(analysis, mem, CCC_MEAN, out_dir, "ccc_vs_memory", mem_title),
        bar_plot(analysis, SAMPLES_PER_S, out_dir, "throughput", "Training throughput"),
        bar_plot(analysis, PARAMS, out_dir, "trainable_params", "Trainable parameters", log=True),
        val_curve_plot(analysis, results, out_dir),
        # Only with a --lrs search: a plain sweep (make smoke, CI) keeps its five plots.
        *([lr_sensitivity_plot(search, analysis, out_dir)] if search is not None else []),
    ]
