"""Verdicts bounded by evidence (bench/report/evidence.py, recommend.py, compare.py): no advice
when nothing learnt or on a pipeline check, flags on impossible figures and contradicting
speed rankings, a collapsed baseline called out, busy machines, and --compare / --fail-on that
judge a change against the runs' own spread."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from bench.cli.report import main
from bench.config import PROFILES
from bench.errors import BenchError
from bench.report import build_report, render
from bench.report.evidence import PIPELINE_CHECK_PROFILES
from bench.result import MachineLoad
from tests.conftest import fixture_results, typed, write_run


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def run(strategy, seed, ccc, sps, *, profile="test", device="GPU", **efficiency):
    """A minimal ok result (schema 1's flat efficiency) with per-utterance predictions whose
    test CCC is about `ccc` (0: a constant predictor)."""
    rng = np.random.default_rng(seed)
    target = rng.normal(size=(200, 2))
    noise = rng.normal(size=(200, 2))
    pred = (
        ccc * target + np.sqrt(max(1e-9, 1 - ccc**2)) * noise
        if ccc > 0
        else np.zeros_like(target) + 0.1
    )
    return {
        "schema": 1,
        "run_id": f"{strategy}-{seed}",
        "strategy": strategy,
        "seed": seed,
        "status": "ok",
        "profile": profile,
        "model": {
            "name": "m",
            "weights": "pretrained",
            "params_total": 100,
            "params_trainable": 10,
        },
        "device": {"type": "cuda", "name": device},
        "metrics": {"ccc": {"arousal": ccc, "valence": ccc}, "ccc_mean": ccc, "history": []},
        "efficiency": {"train_samples_per_s": sps, "epoch_time_s": 100.0 / sps} | efficiency,
        "data": {"name": "c", "dimensions": ["arousal", "valence"], "n_utterances": {"test": 200}},
        "predictions": {
            "dimensions": ["arousal", "valence"],
            "pred": pred.tolist(),
            "target": target.tolist(),
        },
        "config": {"profile": profile, "strategy": strategy, "seed": seed},
    }


def learnt() -> list[dict]:
    return [run("full", 0, 0.6, 10.0), run("partial3", 0, 0.6, 30.0), run("lora", 0, 0.55, 20.0)]


def test_a_sweep_that_learnt_gets_a_use_line():
    report = build_report(typed(learnt()))
    assert report.advice[0].startswith("Use partial3:")
    assert report.evidence.learned == ("full", "partial3", "lora")


def test_nothing_learnt_gets_no_use_line_and_says_what_it_shows():
    results = [run(s, 0, 0.03, v) for s, v in (("full", 10.0), ("lora", 80.0))]
    report = build_report(typed(results))
    assert not any(s.startswith("Use ") for s in report.advice)
    assert report.advice[0].startswith("No recommendation: no strategy learnt")
    assert report.advice[1].startswith("What this run shows: 2 of 2 strategies ran end to end")
    assert report.recommendation.fastest is None


def test_ccc_not_above_a_constant_predictor_is_not_learning():
    results = learnt()
    # A mean CCC above the threshold, from predictions a constant would match: no evidence.
    results[2]["predictions"]["pred"] = [[0.1, 0.1]] * 200
    report = build_report(typed(results))
    assert dict(report.evidence.not_learned)["lora"].startswith("test CCC not significantly")
    assert report.advice[0].startswith("Use partial3:")


def test_a_pipeline_check_profile_gets_no_recommendation():
    results = [run(s, 0, 0.6, v, profile="smoke") for s, v in (("full", 10.0), ("lora", 80.0))]
    report = build_report(typed(results))
    assert report.advice[0].startswith("No recommendation: the smoke profile checks the pipeline")
    assert not any(s.startswith("Use ") for s in report.advice)


def test_pipeline_check_profiles_follow_the_config():
    assert {p.name for p in PROFILES.values() if p.pipeline_check} == PIPELINE_CHECK_PROFILES


def test_smoke_fixture_folder_has_no_use_line(tmp_path):
    out = render(write_run(tmp_path / "run", fixture_results()))
    md = out.markdown.read_text()
    assert "Use " not in md and "No recommendation" in md


def test_a_harness_efficiency_of_7_is_flagged_where_shown():
    results = learnt()
    results[1]["efficiency"]["harness_efficiency"] = 7.0
    report = build_report(typed(results))
    col = next(i for i, c in enumerate(report.table.columns) if c.key == "harness_efficiency")
    row = next(r for r in report.table.rows if r.strategy == "partial3")
    assert row.cells[col - 1].text == "7.00" and "impossible" in row.cells[col - 1].flag
    assert any(
        w.startswith("partial3: harness efficiency above 1.5") for w in report.header.warnings
    )


def test_a_speed_ranking_the_epoch_times_contradict_is_flagged():
    results = learnt()
    results[1]["efficiency"]["epoch_time_s"] = 50.0  # 3x full's samples/s, 5x its epoch time
    report = build_report(typed(results))
    assert any(
        "partial3 trains 3.00x more samples/s than full" in w for w in report.header.warnings
    )
    col = next(i for i, c in enumerate(report.table.columns) if c.key == "train_samples_per_s")
    row = next(r for r in report.table.rows if r.strategy == "partial3")
    assert "epochs slower than full's" in row.cells[col - 1].flag


def test_a_collapsed_baseline_is_called_out_first_and_marks_relative_figures():
    results = learnt()
    results[0] = run("full", 0, 0.0, 10.0)  # constant predictions
    report = build_report(typed(results))
    assert report.header.warnings[0].startswith("BASELINE COLLAPSED: full learnt nothing")
    cols = {c.key: i for i, c in enumerate(report.table.columns)}
    row = next(r for r in report.table.rows if r.strategy == "partial3")
    assert row.cells[cols["speedup"] - 1].flag == "vs a collapsed full"
    assert row.cells[cols["paired"] - 1].flag == "vs a collapsed full"
    assert "which collapsed" in report.advice[0]


def test_the_recommendation_never_ranks_across_device_models():
    results = learnt()
    results[1]["device"]["name"] = "Other GPU"
    rec = build_report(typed(results)).recommendation
    assert rec.fastest is None and rec.memory_pick is None
    assert any("2 device models" in c for c in rec.caveats)


def test_a_busy_machine_is_flagged():
    results = typed(learnt())
    busy = results[2]
    load = MachineLoad(cpus=2, loadavg_1m_max=3.0, others_cpu_share=0.6)
    results[2] = busy.replace(efficiency=dataclasses.replace(busy.efficiency, load=load))
    report = build_report(results)
    assert any(
        w.startswith("Busy machine during lora seed 0: other processes used 60% of the CPUs")
        for w in report.header.warnings
    )
    assert "busy machine" in next(r for r in report.table.rows if r.strategy == "lora").badges
    assert report.analysis.runs.set_index("strategy").loc["lora", "others_cpu_share"] == 0.6


# --------------------------------------------------------------------------------------------
# --compare and --fail-on against the runs' own spread


def noisy(results: list[dict]) -> list[dict]:
    """The fixture sweep again, with throughput and CCC moved by less than their own spread
    (the smoke fixtures' seeds differ up to 14x in samples/s; steps vary ~35-60% in a run)."""
    out = copy.deepcopy(results)
    for r, f in zip(out, (0.75, 1.3, 0.8, 1.2, 0.7, 1.1, 0.85, 1.25), strict=True):
        r["efficiency"]["train_samples_per_s"] *= f
        r["metrics"]["ccc_mean"] -= 0.025 * (r["seed"] == 1)
    return out


def test_compare_of_noise_only_fixtures_reports_no_regression(tmp_path):
    earlier = write_run(tmp_path / "earlier", fixture_results())
    now = write_run(tmp_path / "now", noisy(fixture_results()))
    cmp = render(now, compare_dir=earlier).report.comparison
    assert cmp.regressions == []
    assert any("within the runs' own spread" in n for n in cmp.noise)
    assert main([str(now), "--compare", str(earlier), "--fail-on-regression", "--quiet"]) == 0


def test_fail_on_an_unmeasured_figure_says_so(tmp_path, capsys):
    earlier = write_run(tmp_path / "earlier", fixture_results())
    now = write_run(tmp_path / "now", fixture_results())
    args = [str(now), "--compare", str(earlier), "--quiet"]
    assert main([*args, "--fail-on", "peak_vram_alloc_mib:10%"]) == 2  # CPU runs: never measured
    err = capsys.readouterr().err
    assert "peak_vram_alloc_mib was not measured in either run" in err
    assert "--fail-on peak_vram_alloc_mib: not measured for any strategy" in err


def test_unknown_figures_and_folders_with_nothing_in_common_are_refused(tmp_path, capsys):
    earlier = write_run(tmp_path / "earlier", fixture_results())
    other = [r for r in fixture_results() if r["strategy"] == "lora"]
    for r in other:
        r["strategy"] = "dora"
    now = write_run(tmp_path / "now", other)
    assert main([str(now), "--compare", str(earlier), "--fail-on", "nonsense:10%"]) == 2
    assert "unknown figure 'nonsense'" in capsys.readouterr().err
    assert main([str(now), "--compare", str(earlier), "--quiet"]) == 2
    assert "no strategy in common" in capsys.readouterr().err
    with pytest.raises(BenchError, match="no strategy in common"):
        render(now, compare_dir=earlier)
