"""Time, samples and energy to a target validation CCC (bench/report/target.py): from each run's
history, against a target that `full` sets at the same seed or that --target-ccc gives."""

from __future__ import annotations

import csv

import pytest

from bench.cli.report import main
from bench.report import build_report, render
from bench.report.compare import FigureLimit
from bench.report.figures import find_figure
from bench.report.frame import Replicate
from bench.report.target import Target, to_target
from tests.conftest import ok_result, typed, write_run


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def run(strategy, seed, curve, *, ccc=0.5, energy_per_epoch=None):
    """An ok result whose validation history is `curve`: [(elapsed_s, val CCC), ...]; 100
    training clips, so each epoch is 100 samples."""
    history = [{"epoch": k, "elapsed_s": t, "val_ccc_mean": v} for k, (t, v) in enumerate(curve)]
    return ok_result(
        strategy,
        seed,
        metrics={
            "ccc": {"arousal": ccc, "valence": ccc},
            "ccc_mean": ccc,
            "val_ccc_best": max(v for _, v in curve),
            "history": history,
        },
        efficiency={
            "train_samples_per_s": 10.0,
            "epoch_time_s": 10.0,
            "energy_j_per_epoch": energy_per_epoch,
        },
        data={
            "name": "c",
            "dimensions": ["arousal", "valence"],
            "n_utterances": {"train": 100, "val": 20, "test": 20},
        },
    )


def sweep() -> list[dict]:
    return [
        # full's best 0.5 at seed 0: the target there is 0.475
        run("full", 0, [(10.0, 0.2), (20.0, 0.45), (30.0, 0.5)], energy_per_epoch=100.0),
        # full's best 0.4 at seed 1: target 0.38
        run("full", 1, [(10.0, 0.3), (20.0, 0.4)], energy_per_epoch=100.0),
        run("lora", 0, [(5.0, 0.2), (9.0, 0.48), (13.0, 0.6)], energy_per_epoch=40.0),
        run("lora", 1, [(5.0, 0.1), (9.0, 0.2), (13.0, 0.3)], energy_per_epoch=40.0),
        run("head", 0, [(1.0, 0.1), (2.0, 0.1)]),
        run("head", 1, [(1.0, 0.1), (2.0, 0.12)]),
    ]


def test_full_sets_the_target_per_seed_and_the_first_epoch_at_it_counts():
    got = to_target(typed(sweep()), Target())
    s0, s1 = Replicate(0), Replicate(1)
    assert got[("full", s0)].target_ccc == pytest.approx(0.475)
    assert got[("full", s1)].target_ccc == pytest.approx(0.38)
    full0 = got[("full", s0)]
    assert (full0.epoch, full0.time_to_target_s, full0.samples_to_target) == (2, 30.0, 300.0)
    assert full0.energy_to_target_j == pytest.approx(300.0)
    lora0 = got[("lora", s0)]
    assert (lora0.epoch, lora0.time_to_target_s, lora0.samples_to_target) == (1, 9.0, 200.0)
    assert lora0.energy_to_target_j == pytest.approx(80.0)
    lora1 = got[("lora", s1)]  # 0.3 < 0.38: never
    assert not lora1.reached and lora1.time_to_target_s is None and lora1.samples_to_target is None
    assert lora1.why == "not reached in 3 epochs"
    assert got[("head", s0)].energy_to_target_j is None  # no energy measured, not reached anyway


def test_target_ccc_sets_one_target_for_every_run():
    got = to_target(typed(sweep()), Target(ccc=0.1))
    assert {t.target_ccc for t in got.values()} == {0.1}
    assert got[("head", Replicate(0))].time_to_target_s == 1.0
    assert got[("lora", Replicate(1))].time_to_target_s == 5.0


def test_no_target_when_full_learnt_nothing():
    results = [run("full", 0, [(1.0, -0.02), (2.0, -0.01)]), run("lora", 0, [(1.0, -0.03)])]
    got = to_target(typed(results), Target())
    assert got[("lora", Replicate(0))].target_ccc is None
    assert "full's best validation CCC at seed 0 is -0.010" in got[("lora", Replicate(0))].why


def test_the_table_and_csv_show_the_cost_to_target_and_not_reached(tmp_path):
    out = render(write_run(tmp_path / "run", sweep()))
    a = out.report.analysis
    lora = a.get("lora")
    assert lora.mean("time_to_target_s") == 9.0  # the one seed that reached it
    assert (lora.target.reached, lora.target.runs) == (1, 2)
    t = out.report.table
    cols = {c.key: i for i, c in enumerate(t.columns)}
    rows = {r.strategy: r for r in t.rows}
    assert rows["lora"].cells[cols["time_to_target_s"] - 1].text == "9.0 (1/2)"
    assert rows["head"].cells[cols["time_to_target_s"] - 1].text == "not reached"
    assert rows["head"].cells[cols["samples_to_target"] - 1].text == "not reached"
    assert rows["full"].cells[cols["samples_to_target"] - 1].text.startswith("250 ±")
    # Reached, but energy was not measured: n/a, never "not reached".
    assert rows["full"].cells[cols["energy_to_target_j"] - 1].text.startswith("250 ±")
    assert rows["lora"].cells[cols["energy_to_target_j"] - 1].text == "80 (1/2)"
    md = out.markdown.read_text()
    assert "time to target (s)" in md and "not reached" in md
    with open(out.csv) as fh:
        rows_csv = list(csv.DictReader(fh))
    head0 = next(r for r in rows_csv if r["strategy"] == "head" and r["seed"] == "0")
    assert head0["time_to_target_s"] == "" and head0["target_reached"] == "False"
    lora0 = next(r for r in rows_csv if r["strategy"] == "lora" and r["seed"] == "0")
    assert float(lora0["time_to_target_s"]) == 9.0 and float(lora0["target_ccc"]) == 0.475
    caption = next(p.caption for p in out.plots if p.name == "val_ccc_vs_time")
    assert "95% of full's best validation CCC" in caption and "head not reached (0/2)" in caption


def test_target_ccc_flag_and_fail_on_time_to_target(tmp_path, capsys):
    earlier = write_run(tmp_path / "earlier", sweep())
    slower = sweep()
    for r in slower:
        if r["strategy"] == "lora":
            for h in r["metrics"]["history"]:
                h["elapsed_s"] *= 3
    now = write_run(tmp_path / "now", slower)
    assert find_figure("time_to_target_s", ("arousal",)).key == "time_to_target_s"
    args = [str(now), "--compare", str(earlier), "--quiet", "--target-ccc", "0.15"]
    assert main([*args, "--fail-on", "time_to_target_s:50%"]) == 1
    assert "head: time_to_target_s: target not reached" in capsys.readouterr().err
    cmp = render(
        now,
        compare_dir=earlier,
        limits=(FigureLimit.parse("time_to_target_s:50%"),),
        target=Target(ccc=0.15),
    ).report.comparison
    assert cmp.limit_violations == ["lora: time to target worse by 200.0% > 50%"]
    assert main([str(now), "--target-ccc", "2"]) == 2
    assert "--target-ccc" in capsys.readouterr().err


def test_build_report_takes_the_target():
    report = build_report(typed(sweep()), target=Target(ccc=0.05))
    assert report.analysis.target.ccc == 0.05
    assert all(t.reached for t in report.analysis.to_target.values())
