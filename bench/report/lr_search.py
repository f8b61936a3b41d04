"""A learning-rate search (`bench.run --lrs`): each strategy's rate chosen on validation.

Every grid point is an ordinary run; this groups a folder's results by (row, grid point), picks
for each row the point with the best mean validation CCC over its replicates (the test set never
takes part), and hands the chosen point's runs to the rest of the report, so its table, its
recommendation and its paired tests compare each strategy at its own best rate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.result import RunResult
from bench.stats import Summary, summarize

DEFAULT_POINT = "default"  # runs at their strategy's default rate (no --lrs)


def lr_point(r: RunResult) -> str:
    """The grid point a run belongs to, as --lrs spells it ("x0.3", "0.0001"), from its stored
    config (bench/config.py `lr_label`; not imported here: the config module loads torch)."""
    train = (r.config or {}).get("train") or {}
    if train.get("lr_factor") is not None:
        return f"x{float(train['lr_factor']):g}"
    if train.get("lr") is not None:
        return f"{float(train['lr']):g}"
    return DEFAULT_POINT


def resolved_lr(r: RunResult) -> float | None:
    """The backbone learning rate the run trained with (recorded by the worker)."""
    v = (r.strategy_spec or {}).get("lr")
    return None if v is None else float(v)


@dataclass(frozen=True)
class LrPointStats:
    strategy: str
    point: str  # "x0.3", "0.0001", "default"
    lr: float | None  # the rate the runs trained with (the same for every seed)
    val_ccc: Summary  # best validation CCC (mean of dimensions) over the finished runs
    runs: int  # runs at this point, failed ones included
    ok: int
    wall_s: float  # summed training wall time of its runs (cache build included)


@dataclass(frozen=True)
class LrSearch:
    points: tuple[LrPointStats, ...]
    chosen: Mapping[str, str] = field(default_factory=dict)  # row -> point
    unchosen: Mapping[str, str] = field(default_factory=dict)  # row -> why no point was chosen

    def point(self, strategy: str, point: str) -> LrPointStats | None:
        return next((p for p in self.points if p.strategy == strategy and p.point == point), None)

    def chosen_point(self, strategy: str) -> LrPointStats | None:
        p = self.chosen.get(strategy)
        return None if p is None else self.point(strategy, p)

    def at_edge(self, strategy: str) -> str | None:
        """ "lowest" or "highest" when the chosen rate is the end of a grid of two or more
        rates: the best rate may then lie beyond what was searched. None otherwise."""
        p = self.chosen_point(strategy)
        rates = sorted(q.lr for q in self.points if q.strategy == strategy and q.lr is not None)
        if p is None or p.lr is None or len(set(rates)) < 2:
            return None
        if p.lr == rates[0]:
            return "lowest"
        return "highest" if p.lr == rates[-1] else None

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(p.strategy for p in self.points))

    @property
    def runs(self) -> int:
        return sum(p.runs for p in self.points)

    @property
    def wall_s(self) -> float:
        """The whole search's training wall time: every run at every grid point."""
        return sum(p.wall_s for p in self.points)

    def describe(self, strategy: str) -> str:
        """ "x3 = 1.5e-04" or "0.0001" (the chosen rate), for a table badge."""
        p = self.chosen_point(strategy)
        if p is None:
            return "no rate chosen"
        if p.lr is None or p.point == f"{p.lr:g}":
            return f"lr {p.point}"
        return f"lr {p.point} = {p.lr:.2g}"


def _wall(r: RunResult) -> float:
    t = r.efficiency.time if r.efficiency else None
    return float(t.train_wall_s) if t is not None and t.train_wall_s is not None else 0.0


def _best_val(r: RunResult) -> float | None:
    return r.metrics.val_ccc_best if r.ok and r.metrics else None


def search(results: Sequence[RunResult]) -> tuple[LrSearch | None, list[RunResult]]:
    """(the search, the chosen points' results) when any run belongs to a --lrs grid point;
    (None, the results unchanged) otherwise."""
    if all(lr_point(r) == DEFAULT_POINT for r in results):
        return None, list(results)
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.strategy, lr_point(r)), []).append(r)
    points = []
    for (name, point), runs in groups.items():
        lrs = [v for r in runs if (v := resolved_lr(r)) is not None]
        points.append(
            LrPointStats(
                name,
                point,
                lrs[0] if lrs else None,
                summarize(_best_val(r) for r in runs),
                len(runs),
                sum(1 for r in runs if r.ok),
                sum(_wall(r) for r in runs),
            )
        )
    # Grid order: by rate where known, then as spelled.
    points.sort(key=lambda p: (p.strategy, p.lr if p.lr is not None else float("inf"), p.point))
    chosen: dict[str, str] = {}
    unchosen: dict[str, str] = {}
    for name in dict.fromkeys(r.strategy for r in results):
        mine = [p for p in points if p.strategy == name and p.val_ccc.mean is not None]
        if mine:
            chosen[name] = max(mine, key=lambda p: p.val_ccc.mean).point  # type: ignore[arg-type,return-value]
        else:
            unchosen[name] = "no run at any rate finished with a validation CCC"
    kept = [
        r
        for r in results
        if lr_point(r) == chosen.get(r.strategy)
        # a row with no rate chosen keeps its runs, so its failures still show
        or (r.strategy in unchosen)
    ]
    return LrSearch(tuple(points), chosen, unchosen), kept


def search_rows(search: LrSearch) -> list[list[str]]:
    """The search as table rows (plain text): strategy, grid point, rate, validation CCC
    (mean ± sd over seeds), finished runs, training wall time, chosen."""
    rows = []
    for p in search.points:
        v = p.val_ccc
        ccc = "n/a" if v.mean is None else f"{v.mean:.3f}" + (f" ± {v.sd:.3f}" if v.sd else "")
        rows.append(
            [
                p.strategy,
                p.point,
                "n/a" if p.lr is None else f"{p.lr:.3g}",
                ccc,
                f"{p.ok}/{p.runs}",
                f"{p.wall_s:.1f}",
                _chosen_mark(search, p),
            ]
        )
    return rows


def _chosen_mark(search: LrSearch, p: LrPointStats) -> str:
    if search.chosen.get(p.strategy) != p.point:
        return ""
    edge = search.at_edge(p.strategy)
    return f"chosen ({edge} rate searched)" if edge else "chosen"


SEARCH_HEAD = ("Strategy", "grid point", "rate", "val CCC", "runs ok", "wall (s)", "")


def search_summary(search: LrSearch) -> str:
    """One sentence: the chosen rates and what the search cost."""
    chosen = ", ".join(f"{s} {search.describe(s).removeprefix('lr ')}" for s in search.chosen)
    cost = (
        f"{search.runs} runs, {search.wall_s:.0f} s of training wall time (cache builds included)"
    )
    tail = "".join(f"; {s}: {why}" for s, why in search.unchosen.items())
    edges = {s: e for s in search.chosen if (e := search.at_edge(s))}
    beyond = (
        " At the edge of its grid, so the best rate may lie beyond it (widen --lrs): "
        + ", ".join(f"{s} (the {e} rate searched)" for s, e in edges.items())
        + "."
        if edges
        else ""
    )
    return (
        f"Learning rates chosen by mean validation CCC over seeds (the test set takes no part): "
        f"{chosen or 'none'}{tail}. The search cost {cost}.{beyond}"
    )
