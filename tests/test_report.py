"""The report: rendering from saved result JSONs (structure, not pixels), escaping, Pareto fronts,
the recommendation rule, regression flags with --compare, and the CLI's exit codes."""

from __future__ import annotations

import copy
import csv
import json
import math
import statistics
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from rich.console import Console

from bench.cli.report import main
from bench.errors import BenchError
from bench.report import build_report, console_table, render
from bench.report.compare import FigureLimit
from bench.report.figures import table_metrics
from bench.report.markdown import md_escape
from bench.report.pareto import dominates, pareto_front
from bench.report.plots import memory_metric
from bench.result import SCHEMA
from bench.result.store import write_result
from tests.conftest import FIXTURES, fixture_results, ok_result, typed, write_run

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    # On GitHub Actions every render would otherwise append to the job summary.
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The fixture sweep (4 strategies x 2 seeds, smoke profile) rendered once for this module."""
    import os

    os.environ.pop("GITHUB_STEP_SUMMARY", None)
    out = write_run(tmp_path_factory.mktemp("fixture_run"), fixture_results())
    return render(out)


class Dom(HTMLParser):
    """Just enough of the DOM to check structure: tables by id (header and body cells), svg count,
    script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list]] = {}
        self.svgs = 0
        self.scripts: list[str] = []
        self._table: str | None = None
        self._part = ""
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._in_script = False
        self.meta: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = {"head": [], "rows": [], "strategies": []}
        elif tag in ("thead", "tbody"):
            self._part = tag
        elif tag == "tr" and self._table is not None:
            self._row = []
            if "data-strategy" in a:
                self.tables[self._table]["strategies"].append(a["data-strategy"])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "svg":
            self.svgs += 1
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "meta":
            self.meta.append(a)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            key = "head" if self._part == "thead" else "rows"
            self.tables[self._table][key].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_script:
            self.scripts[-1] += data


def parse(html: str) -> Dom:
    d = Dom()
    d.feed(html)
    return d


def md_table(md: str, header_start: str = "| Strategy |") -> list[list[str]]:
    """The first markdown table whose header starts with `header_start`, split on unescaped |."""
    import re

    lines = md.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


# --------------------------------------------------------------------------------------------
# Rendering from the saved fixture results


def test_render_writes_every_file(rendered):
    assert rendered.markdown.exists() and rendered.html.exists() and rendered.csv.exists()
    names = sorted(p.png.name for p in rendered.plots)
    assert names == sorted(
        [
            "ccc_vs_epoch_time.png",
            "ccc_vs_memory.png",
            "throughput.png",
            "trainable_params.png",
            "val_ccc_vs_time.png",
        ]
    )
    for p in rendered.plots:
        assert p.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_structure_follows_the_results(rendered):
    results = fixture_results()
    dom = parse(rendered.html.read_text())
    table = dom.tables["comparison"]
    head = table["head"][0]
    dims = tuple(results[0]["predictions"]["dimensions"])
    expected = ["Strategy"] + [m.header for m in table_metrics(dims)]
    for want in expected:
        assert any(h.startswith(want) for h in head), (want, head)
    strategies = list(dict.fromkeys(r["strategy"] for r in results))
    shown = table["strategies"]
    assert sorted(shown) == sorted(strategies) and shown[0] == "full"  # baseline first
    assert table["rows"][0][0].startswith("full")
    assert all(len(row) == len(head) for row in table["rows"])
    # One inline SVG per plot, no external resources, exactly one script (ours).
    assert dom.svgs == len(rendered.plots) == 5
    assert len(dom.scripts) == 1
    html = rendered.html.read_text()
    for bad in ("http://", "https://", "<link", "src="):
        assert bad not in html.replace("http://www.w3.org", ""), bad
    csp = next(m for m in dom.meta if m.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp["content"] and "sha256-" in csp["content"]


def test_csp_hash_matches_the_inline_script(rendered):
    import base64
    import hashlib

    dom = parse(rendered.html.read_text())
    digest = base64.b64encode(hashlib.sha256(dom.scripts[0].encode()).digest()).decode()
    csp = next(m for m in dom.meta if m.get("http-equiv") == "Content-Security-Policy")
    assert f"'sha256-{digest}'" in csp["content"]  # else the browser would block the sorting


def test_table_means_are_the_means_of_the_runs(rendered):
    results = fixture_results()
    rows = {r[0].split()[0]: r for r in md_table(rendered.markdown.read_text())[2:]}
    head = md_table(rendered.markdown.read_text())[0]
    col = head.index("CCC mean")
    for name in ("full", "lora"):
        vals = [r["metrics"]["ccc_mean"] for r in results if r["strategy"] == name]
        cell = rows[name][col].strip("*")
        assert cell.startswith(f"{statistics.mean(vals):.3f}")
        assert cell.endswith(f"{statistics.stdev(vals):.3f}")


def test_speedup_is_computed_per_seed(rendered):
    results = fixture_results()
    sps = {(r["strategy"], r["seed"]): r["efficiency"]["train_samples_per_s"] for r in results}
    runs = rendered.report.analysis.runs.set_index(["strategy", "seed"])
    for (s, seed), v in sps.items():
        assert runs.loc[(s, seed), "speedup"] == pytest.approx(v / sps[("full", seed)])
    lora = rendered.report.analysis.get("lora")
    per_seed = [sps[("lora", k)] / sps[("full", k)] for k in (0, 1)]
    assert lora.mean("speedup") == pytest.approx(statistics.mean(per_seed))


def test_markdown_has_header_warnings_recommendation_and_plots(rendered):
    md = rendered.markdown.read_text()
    for word in (
        "**Profile**",
        "**Model**",
        "**Corpus**",
        "**Device**",
        "**Seeds**",
        "**Config hash**",
    ):
        assert word in md
    assert "RANDOM-INIT" in md  # the fixtures are random-init smoke runs
    # Every CCC of the smoke fixtures is near zero: the evidence supports no "Use ..." line.
    assert "## Recommendation" in md and "No recommendation: the smoke profile checks" in md
    assert "What this run shows: 4 of 4 strategies ran end to end" in md
    assert "Use " not in md.split("## Recommendation")[1].split("##")[0]
    assert "95% confidence intervals" in md  # two seeds
    assert "paired bootstrap" in md
    for p in rendered.plots:
        assert f"](plots/{p.png.name})" in md
    table = md_table(md)
    assert len(table) == 2 + 4 and len({len(r) for r in table}) == 1


def test_energy_is_na_with_a_reason(rendered):
    col = next(c for c in rendered.report.table.columns if c.key == "energy_j_per_epoch")
    assert col.na_reason  # fixtures are CPU runs: no energy counter
    assert "energy" in col.na_reason
    assert "¹ n/a in" in rendered.markdown.read_text()


def test_gpu_figures_fill_their_columns_when_measured():
    results = copy.deepcopy(fixture_results())
    for i, r in enumerate(results):
        r["efficiency"].update(energy_j_per_epoch=100.0 + i, peak_vram_nvml_mib=2000.0 + 10 * i)
    report = build_report(typed(results))
    cols = {c.key: (i, c) for i, c in enumerate(report.table.columns)}
    for key in ("energy_j_per_epoch", "peak_vram_nvml_mib"):
        i, col = cols[key]
        assert col.na_reason is None
        full = next(r for r in report.table.rows if r.strategy == "full")
        vals = [r["efficiency"][key] for r in results if r["strategy"] == "full"]
        assert full.cells[i - 1].text.startswith(f"{statistics.mean(vals):.0f} ±")
    assert memory_metric(report.analysis).key == "peak_vram_nvml_mib"


def test_results_csv_has_one_row_per_run(rendered):
    rows = list(csv.DictReader(rendered.csv.open()))
    assert len(rows) == len(fixture_results())
    assert {"strategy", "seed", "status", "ccc_mean", "speedup", "degenerate"} <= set(rows[0])


def test_best_value_in_each_column_is_marked(rendered):
    t = rendered.report.table
    a = rendered.report.analysis
    for i, col in enumerate(t.columns[1:]):
        metric = next((m for m in a.metrics if m.key == col.key), None)
        if metric is None or not metric.mark_best or col.na_reason:
            continue
        vals = {s.name: s.mean(col.key) for s in a.ok_strategies if s.mean(col.key) is not None}
        top = (max if metric.higher_is_better else min)(vals.values())
        marked = {r.strategy for r in t.rows if r.ok and r.cells[i].best}
        assert marked == {n for n, v in vals.items() if v == top}, col.key


def test_console_table_lists_every_strategy(rendered):
    console = Console(record=True, width=200)
    console.print(console_table(rendered.report, plain=True, compact=True))
    text = console.export_text()
    for s in ("full", "lora", "partial3", "partial3+amp+cache", "CCC mean", "speed-up"):
        assert s in text
    assert "not shown here" in text  # compact mode says what it left out


def test_step_summary_gets_the_markdown_without_images(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = write_run(tmp_path / "run", fixture_results())
    render(out)
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "| Strategy |" in text and "![" not in text


# --------------------------------------------------------------------------------------------
# Escaping


def hostile_results() -> list[dict]:
    results = copy.deepcopy(fixture_results())
    for r in results:
        if r["strategy"] == "lora":
            r["strategy"] = HOSTILE + "|$x$_"
        r["data"]["name"] = '<img src=x onerror="alert(2)">'
        r["model"]["name"] = "</dd><script>alert(3)</script>"
    return results


def test_hostile_names_are_escaped_everywhere(tmp_path):
    results = hostile_results()
    out = render(tmp_path / "run", typed(results))
    html = out.html.read_text()
    dom = parse(html)
    assert len(dom.scripts) == 1  # only ours: no injected script element
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=" in html
    assert HOSTILE + "|$x$_" in dom.tables["comparison"]["strategies"]  # shown as text, intact
    md = out.markdown.read_text()
    assert "<script>" not in md and "<img" not in md
    table = md_table(md)
    assert len({len(r) for r in table}) == 1  # the | in the name did not add a column
    assert md_escape(HOSTILE + "|$x$_") in md


def test_md_escape():
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("<b>*x*</b>") == "&lt;b&gt;\\*x\\*&lt;/b&gt;"
    assert md_escape("[link](http://x)") == "\\[link](http://x)"
    assert md_escape("two\nlines") == "two lines"


# --------------------------------------------------------------------------------------------
# Pareto fronts


def test_pareto_front_with_mixed_directions():
    # (epoch time: lower is better, CCC: higher is better)
    pts = [(10.0, 0.60), (5.0, 0.58), (2.0, 0.50), (6.0, 0.55), (12.0, 0.59)]
    assert pareto_front(pts, (False, True)) == [0, 1, 2]
    # Flip time to "higher is better": now the slowest-and-best points win.
    assert pareto_front(pts, (True, True)) == [0, 4]


def test_pareto_front_skips_missing_keeps_ties_and_handles_three_figures():
    nan = float("nan")
    assert pareto_front([(1.0, 1.0), (nan, 5.0), (None, 9.0)], (True, True)) == [0]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)], (True, True)) == [0, 1]
    pts = [(1, 1, 1), (2, 0, 0), (0, 2, 0), (0, 0, 2), (0, 0, 0)]
    assert pareto_front(pts, (True, True, True)) == [0, 1, 2, 3]
    assert dominates((1, 1), (1, 0), (True, True)) and not dominates((1, 1), (1, 1), (True, True))


# --------------------------------------------------------------------------------------------
# The recommendation rule


def synthetic(strategy, seed, ccc, sps, vram=None, rss=500.0, pred=None):
    """A minimal ok result in the worker's shape."""
    return ok_result(
        strategy,
        seed,
        run_id=f"{strategy}-{seed}",
        error=None,
        metrics={"ccc": {"arousal": ccc, "valence": ccc}, "ccc_mean": ccc, "history": []},
        efficiency={
            "train_samples_per_s": sps,
            "epoch_time_s": 100.0 / sps,
            "peak_vram_nvml_mib": vram,
            "peak_rss_mib": rss,
        },
        data={"name": "c", "dimensions": ["arousal", "valence"], "n_utterances": {"test": 3}},
        notes=[],
    )


def test_recommends_the_fastest_within_tolerance_and_the_least_memory():
    results = [
        synthetic("full", 0, 0.600, 10.0, vram=9000),
        synthetic("partial3", 0, 0.595, 30.0, vram=5000),
        synthetic("lora", 0, 0.592, 20.0, vram=4000),
        synthetic("head", 0, 0.550, 100.0, vram=1000),
    ]
    rec = build_report(typed(results), tolerance=0.01).recommendation
    assert rec.best == "full" and rec.candidates == ("full", "partial3", "lora")
    assert rec.fastest == "partial3"  # head is faster but 0.05 below the best
    assert rec.memory_pick == "lora" and rec.memory_metric.key == "peak_vram_nvml_mib"
    wide = build_report(typed(results), tolerance=0.06).recommendation
    assert wide.fastest == "head" and wide.memory_pick == "head"
    # Exactly at the tolerance counts as within it.
    edge = build_report(typed(results), tolerance=0.008).recommendation
    assert edge.candidates == ("full", "partial3", "lora")


def test_memory_falls_back_to_rss_and_says_so():
    results = [synthetic("full", 0, 0.6, 10.0, rss=900), synthetic("lora", 0, 0.6, 12.0, rss=700)]
    report = build_report(typed(results))
    assert report.recommendation.memory_pick == "lora"
    assert report.recommendation.memory_metric.key == "peak_rss_mib"
    assert any("GPU memory was not measured" in c for c in report.recommendation.caveats)
    assert any("not measured" in s for s in report.advice)


def test_degenerate_strategy_is_flagged_and_not_recommended():
    import numpy as np

    rng = np.random.default_rng(0)
    target = rng.normal(size=(12, 2)).tolist()
    results = []
    for name, ccc, sps in (("full", 0.6, 10.0), ("partial3", 0.59, 20.0), ("lora", 0.61, 99.0)):
        r = synthetic(name, 0, ccc, sps, vram=1000)
        pred = (np.asarray(target) + rng.normal(scale=0.3, size=(12, 2))).tolist()
        if name == "lora":
            pred = [[0.1, 0.2]] * 12  # the model learnt a constant
        r["predictions"] = {
            "split": "test",
            "dimensions": ["arousal", "valence"],
            "pred": pred,
            "target": target,
        }
        results.append(r)
    report = build_report(typed(results))
    lora = report.analysis.get("lora")
    assert lora.degenerate and "constant predictions (arousal, valence)" in lora.degenerate[0][1]
    assert report.recommendation.fastest == "partial3"
    assert any("lora (degenerate run)" in e for e in report.recommendation.excluded)
    assert any("Degenerate run lora seed 0" in w for w in report.header.warnings)
    assert "degenerate" in next(r for r in report.table.rows if r.strategy == "lora").badges


def test_failed_runs_are_shown_with_their_error(tmp_path):
    results = fixture_results()
    failed = copy.deepcopy(next(r for r in results if r["strategy"] == "lora"))
    failed.update(
        strategy="partial6", status="oom", error="CUDA out of memory: tried to allocate 2.00 GiB"
    )
    failed["metrics"] = None
    out = render(tmp_path / "run", typed([*results, failed]))
    html, md = out.html.read_text(), out.markdown.read_text()
    assert "CUDA out of memory: tried to allocate 2.00 GiB" in html
    assert "FAILED" in html and "**FAILED**" in md
    assert any("partial6 seed 0 oom" in w for w in out.report.header.warnings)
    row = next(r for r in md_table(md) if r[0].startswith("partial6"))
    assert "tried to allocate" in row[1]


def test_folds_are_averaged_like_seeds_and_paired_per_fold(tmp_path):
    """IEMOCAP --folds: each (seed, fold) is one replicate; figures average over all of them and
    speed-ups pair runs of the same seed and fold."""
    ccc = {("full", 1): 0.50, ("full", 2): 0.60, ("full", 3): 0.70}
    ccc |= {("lora", 1): 0.40, ("lora", 2): 0.45, ("lora", 3): 0.65}
    sps = {"full": {1: 10.0, 2: 20.0, 3: 40.0}, "lora": {1: 30.0, 2: 30.0, 3: 60.0}}
    results = []
    for (name, fold), c in ccc.items():
        r = synthetic(name, 0, c, sps[name][fold])
        r["config"]["fold"] = fold
        results.append(r)
    out = render(tmp_path / "run", typed(results))
    a = out.report.analysis
    assert a.folds == (1, 2, 3) and a.seeds == (0,) and a.spread == "1 seed x 3 folds"
    lora = a.get("lora")
    assert lora.mean("ccc_mean") == pytest.approx(statistics.mean([0.40, 0.45, 0.65]))
    assert lora.mean("speedup") == pytest.approx(statistics.mean([3.0, 1.5, 1.5]))
    assert [str(p.replicate) for p in lora.paired] == [
        "seed 0 fold 1",
        "seed 0 fold 2",
        "seed 0 fold 3",
    ]
    assert (
        "Folds",
        "1, 2, 3 (3 folds, leave-one-session-out; figures are averaged over seeds and folds)",
    ) in out.report.header.facts
    assert not any("One seed only" in w for w in out.report.header.warnings)
    assert "mean ± sd over 1 seed x 3 folds" in out.markdown.read_text()
    assert "seed 0 fold 2" in out.html.read_text()


def test_speedups_pair_runs_on_the_same_gpu_model_only():
    results = [
        synthetic("full", 0, 0.6, 10.0),
        synthetic("lora", 0, 0.6, 30.0),
        synthetic("full", 1, 0.6, 10.0),
        synthetic("lora", 1, 0.6, 90.0),  # on a faster GPU than its full run: no speed-up
    ]
    for r in results:
        r["device"] = {"type": "cuda", "name": "NVIDIA A100-SXM4-40GB"}
    results[3]["device"] = {"type": "cuda", "name": "NVIDIA H100 80GB HBM3"}
    report = build_report(typed(results))
    runs = report.analysis.runs.set_index(["strategy", "seed"])
    assert runs.loc[("lora", 0), "speedup"] == pytest.approx(3.0)
    assert math.isnan(runs.loc[("lora", 1), "speedup"])
    assert report.analysis.get("lora").mean("speedup") == pytest.approx(3.0)
    [warning] = [w for w in report.header.warnings if "device models" in w]
    assert "NVIDIA A100-SXM4-40GB (3 runs); NVIDIA H100 80GB HBM3 (1 run)" in warning
    assert "only between runs on the same model" in warning and "1 runs have no full" in warning
    same = build_report(typed(results[:2]))
    assert not any("device models" in w for w in same.header.warnings)


# --------------------------------------------------------------------------------------------
# --compare and the CLI


def slower_and_worse(results: list[dict]) -> list[dict]:
    """lora loses 0.05 CCC, partial3 70% of its throughput (the smoke fixtures' steps vary by
    ~45% within a run: a smaller loss would be within their noise); the rest is unchanged."""
    changed = copy.deepcopy(results)
    for r in changed:
        if r["strategy"] == "lora":
            r["metrics"]["ccc_mean"] -= 0.05
        if r["strategy"] == "partial3":
            r["efficiency"]["train_samples_per_s"] *= 0.3
    return changed


def test_compare_flags_slowdowns_and_ccc_drops(tmp_path):
    earlier = write_run(tmp_path / "earlier", fixture_results())
    out = render(
        write_run(tmp_path / "now", slower_and_worse(fixture_results())), compare_dir=earlier
    )
    cmp = out.report.comparison
    assert cmp is not None
    flagged = {c.strategy: c.flags for c in cmp.changes if c.flags}
    assert set(flagged) == {"lora", "partial3"}
    assert flagged["lora"][0].startswith("CCC drop 0.050")
    assert flagged["partial3"][0].startswith("slow-down 70.0% > 10% (beyond the runs' spread")
    assert cmp.get("full").ccc_delta == pytest.approx(0.0)
    html = out.html.read_text()
    assert 'id="regressions"' in html and "ΔCCC vs earlier" in html
    assert "2 regression(s)" in out.markdown.read_text()


def test_cli_exit_codes(tmp_path, capsys):
    earlier = write_run(tmp_path / "earlier", fixture_results())
    same = write_run(tmp_path / "same", fixture_results())
    worse = write_run(tmp_path / "worse", slower_and_worse(fixture_results()))
    assert main([str(same), "--compare", str(earlier), "--fail-on-regression", "--quiet"]) == 0
    assert main([str(worse), "--compare", str(earlier), "--fail-on-regression", "--quiet"]) == 1
    assert "regression" in capsys.readouterr().err
    assert main([str(worse), "--compare", str(earlier), "--quiet"]) == 0  # reported, not failed
    assert main([str(worse), "--fail-on-regression"]) == 2
    assert "needs --compare" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2
    assert "no result files" in capsys.readouterr().err
    assert main([str(same), "--tolerance", "-1"]) == 2


def test_render_without_results_is_a_user_error(tmp_path):
    with pytest.raises(BenchError, match="no result files"):
        render(tmp_path)


def test_python_m_bench_report_runs(tmp_path):
    out = write_run(tmp_path / "run", fixture_results())
    proc = subprocess.run(
        [sys.executable, "-m", "bench.report", str(out)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "serbench: strategies compared" in proc.stdout and "No recommendation" in proc.stdout
    assert (out / "index.html").exists()


def test_fail_on_any_figure_follows_its_declared_direction(tmp_path, capsys):
    earlier = write_run(tmp_path / "earlier", fixture_results())
    heavier = copy.deepcopy(fixture_results())
    for r in heavier:
        if r["strategy"] == "lora":
            r["efficiency"]["peak_rss_mib"] *= 1.2  # lower is better: 20% worse
        if r["strategy"] == "partial3":
            r["efficiency"]["peak_rss_mib"] *= 0.5  # 50% better: never a regression
    now = write_run(tmp_path / "now", heavier)
    args = [str(now), "--compare", str(earlier), "--quiet"]
    assert main([*args, "--fail-on", "peak_rss_mib:10%"]) == 1
    assert "lora: peak RSS worse by 20.0% > 10%" in capsys.readouterr().err + "".join(
        render(
            now, compare_dir=earlier, limits=(FigureLimit("peak RSS", 0.1),)
        ).report.comparison.regressions
    )
    assert main([*args, "--fail-on", "peak_rss_mib:25%"]) == 0
    assert main([*args, "--fail-on", "warp_speed:5%"]) == 2
    assert "unknown figure 'warp_speed'" in capsys.readouterr().err
    assert main([*args, "--fail-on", "peak_rss_mib"]) == 2
    assert main([str(now), "--fail-on", "peak_rss_mib:10%"]) == 2  # needs --compare


# --------------------------------------------------------------------------------------------
# Several backbones in one report (`--model a,b`)


def _two_backbones() -> list[dict]:
    """The fixture sweep as if run on two backbones: the tiny-w2v2 results, and a copy under
    tiny-wavlm that is half as fast in full finetuning and has other predictions."""
    first = fixture_results()
    second = copy.deepcopy(first)
    for r in second:
        r["model"]["name"] = "tiny-wavlm"
        r["model"]["architecture"] = {
            "family": "wavlm",
            "layers": 4,
            "hidden_size": 32,
            "pre_layer_norm": False,
            "params_backbone": 57_272,
        }
        if r["strategy"] == "full":
            r["efficiency"]["train_samples_per_s"] /= 2
        r["predictions"]["pred"] = [[v + 0.1 for v in row] for row in r["predictions"]["pred"]]
    return first + second


def test_several_backbones_get_a_row_per_backbone_and_strategy(tmp_path):
    from bench.result.store import result_path

    results = _two_backbones()
    for r in results:
        write_result(
            result_path(tmp_path, r["strategy"], r["seed"], r["model"]["name"]), typed([r])[0]
        )
    report = render(tmp_path).report
    names = [s.name for s in report.analysis.strategies]
    strategies = ["full", "partial3", "partial3+amp+cache", "lora"]
    assert sorted(names) == sorted(
        f"{m} · {s}" for m in ("tiny-w2v2", "tiny-wavlm") for s in strategies
    )
    assert names.index("tiny-w2v2 · full") < names.index("tiny-w2v2 · lora")
    assert names.index("tiny-wavlm · full") < names.index("tiny-wavlm · lora")
    # Each row against full finetuning of its own backbone, seed by seed.
    sps = {
        (r["model"]["name"], r["strategy"], r["seed"]): r["efficiency"]["train_samples_per_s"]
        for r in results
    }
    runs = report.analysis.runs.set_index(["strategy", "seed"])
    for (model, s, seed), v in sps.items():
        expected = v / sps[(model, "full", seed)]
        assert runs.loc[(f"{model} · {s}", seed), "speedup"] == pytest.approx(expected)
    for model in ("tiny-w2v2", "tiny-wavlm"):
        lora = report.analysis.get(f"{model} · lora")
        assert all(p.result is not None for p in lora.paired)  # paired with its own full
        row = next(r for r in report.table.rows if r.strategy == f"{model} · full")
        assert "baseline" in row.badges
    facts = dict(report.header.facts)
    assert "Models (2)" in facts and "Model" not in facts
    assert "tiny-w2v2: random-init weights" in facts["Models (2)"]
    assert (
        "tiny-wavlm: random-init weights, wavlm, 4 layers, hidden size 32, 57.3k parameters"
        in (facts["Models (2)"])
    )
    assert facts["Runs"].startswith("16 runs of 4 strategies on 2 backbones")
    assert not any("different configurations" in w for w in report.header.warnings)
    md = (tmp_path / "report.md").read_text()
    assert "| tiny-wavlm · lora |" in md
    with open(tmp_path / "results.csv") as fh:
        assert {row["model"] for row in csv.DictReader(fh)} == {"tiny-w2v2", "tiny-wavlm"}


def test_a_missing_baseline_is_named_per_backbone():
    results = [
        r
        for r in _two_backbones()
        if not (r["model"]["name"] == "tiny-wavlm" and r["strategy"] == "full")
    ]
    report = build_report(typed(results))
    assert any("No successful tiny-wavlm · full run" in w for w in report.header.warnings)
    lora = report.analysis.get("tiny-wavlm · lora")
    assert all(p.result is None and "tiny-wavlm · full" in p.note for p in lora.paired)


def test_a_schema_1_folder_renders_and_compares_with_a_new_one(tmp_path):
    """An old run folder, as written by schema 1, renders as it is and serves as --compare's
    baseline for a folder in the current schema."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(FIXTURES, old / "results")
    assert {json.loads(p.read_text())["schema"] for p in (old / "results").glob("*.json")} == {1}
    now = write_run(tmp_path / "now", fixture_results())
    assert {json.loads(p.read_text())["schema"] for p in (now / "results").glob("*.json")} == {
        SCHEMA
    }
    old_report = render(old).report
    assert [s.name for s in old_report.analysis.strategies] == [
        "full",
        "partial3",
        "partial3+amp+cache",
        "lora",
    ]
    cmp = render(now, compare_dir=old).report.comparison
    assert cmp is not None and not cmp.regressions
    assert all(c.ccc_delta == pytest.approx(0.0) for c in cmp.changes)
    assert all(c.speed_change == pytest.approx(0.0) for c in cmp.changes)
