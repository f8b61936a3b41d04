"""A plan against the runs that followed it (bench/plan/check.py): the projection's error, the
machine's own change of speed, and the report's section."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ok_result, typed, write_run

from bench.plan.check import check_folder, check_plan
from bench.plan.fit import fit_lengths
from bench.report import render
from bench.result.store import load_results

ROOT = Path(__file__).resolve().parents[1]
FIT = fit_lengths([(16_000, 0.1), (32_000, 0.2), (48_000, 0.3), (64_000, 0.4)])


def plan(**over) -> dict:
    return {
        "model": "m",
        "profile": "test",
        "batch_size": 8,
        "strategies": [{"strategy": "full", "epoch_s": {"value": 10.0}}],
        "calibrations": [{"strategy": "full", "train": FIT.to_dict()}],
        **over,
    }


def run(epochs: list[float], step_s: float, batch_size: int = 8, **config) -> dict:
    """A finished run whose epochs took `epochs` seconds and whose ceiling step took `step_s`
    at 32,000 samples."""
    return ok_result(
        "full",
        0,
        config={"profile": "test", "model": "m", "train": {"batch_size": batch_size}, **config},
        metrics={
            "ccc": {"arousal": 0.5},
            "ccc_mean": 0.5,
            "history": [{"epoch": i, "epoch_time_s": t} for i, t in enumerate(epochs)],
        },
        efficiency={
            "train_samples_per_s": 10.0,
            "ceiling": {
                "samples_per_s": 8 / step_s,
                "batch_size": batch_size,
                "input_samples": 32_000,
                "steps": 10,
                "seconds": 10 * step_s,
            },
        },
    )


def test_the_fit_survives_plan_json():
    again = type(FIT).from_dict(json.loads(json.dumps(FIT.to_dict())))
    assert again == FIT and again.seconds(40_000) == pytest.approx(FIT.seconds(40_000))


def test_a_miss_the_machine_explains_is_told_from_a_wrong_projection():
    # Steady epochs (after the first) took 12 s against 10 projected: +20%. The same fixed-batch
    # step took 0.24 s against 0.2 s in calibration: the machine was 1.2x slower, so the
    # projection itself was right.
    (c,) = check_plan(plan(), typed([run([13.0, 12.0, 12.0], step_s=0.24)])).checks
    assert c.measured_epoch_s == pytest.approx(12.0) and c.epochs_used == "epochs 2-3"
    assert c.error == pytest.approx(0.2) and c.machine_speed == pytest.approx(1.2, rel=1e-3)
    assert c.error_beyond_machine == pytest.approx(0.0, abs=1e-3)
    assert "+20%" in c.sentence() and "1.20x its calibrated time" in c.sentence()
    # The same miss on a machine that held its speed is the projection's.
    (wrong,) = check_plan(plan(), typed([run([13.0, 12.0], step_s=0.2)])).checks
    assert wrong.error_beyond_machine == pytest.approx(0.2, rel=1e-3) and wrong.holds is True
    (far,) = check_plan(plan(), typed([run([15.0, 15.0], step_s=0.2)])).checks
    assert far.holds is False


def test_a_single_epoch_counts_with_its_first_visits_and_says_so():
    (c,) = check_plan(plan(), typed([run([11.0], step_s=0.2)])).checks
    assert c.measured_epoch_s == 11.0 and "first visits included" in c.epochs_used


def test_a_plan_for_another_configuration_is_not_compared():
    report = check_plan(plan(batch_size=16), typed([run([10.0, 10.0], step_s=0.2)]))
    assert report.checks == () and "batch size 16 in the plan, 8 in the runs" in report.not_compared
    other = check_plan(plan(model="big"), typed([run([10.0, 10.0], step_s=0.2)]))
    assert "model 'big' in the plan, 'm' in the runs" in other.sentences()[0]


def test_no_run_no_comparison_and_no_ceiling_no_machine_figure():
    report = check_plan(plan(), [])
    assert report.checks[0].error is None and "no finished run" in report.sentences()[0]
    bare = run([10.0, 10.0], step_s=0.2)
    del bare["efficiency"]["ceiling"]
    (c,) = check_plan(plan(), typed([bare])).checks
    assert c.error == pytest.approx(0.0) and c.machine_speed is None
    assert "calibrated time" not in c.sentence()


def test_the_report_shows_the_plan_against_the_run(tmp_path):
    folder = write_run(tmp_path / "run", [run([13.0, 12.0], step_s=0.24)])
    assert check_folder(folder, load_results(folder)) is None  # no plan.json: nothing to say
    (folder / "plan.json").write_text(json.dumps(plan()))
    out = render(folder, step_summary=False)
    md = out.markdown.read_text()
    assert "### Plan against the run" in md and "full: projected 10.0 s an epoch" in md
    assert "Plan against the run" in out.html.read_text()


@pytest.mark.calibration
def test_plan_then_run_through_the_two_commands(tmp_path):
    """The path a user takes: `python -m bench.plan`, then `python -m bench.run` with the same
    arguments, each its own process with the machine's threads. Each strategy's steady epoch is
    within 20% of its projection; a larger miss passes only where the runs' own fixed-batch step
    shows the machine itself changed speed by more than 10% since calibration, and the
    projection still holds within 20% once that change is divided out."""
    out = tmp_path / "run"
    args = ["--profile", "quick", "--epochs", "2", "--strategies", "full,partial3"]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "SERBENCH_CACHE": str(tmp_path / "cache"),
        "SERBENCH_PREFIX_CACHE": str(tmp_path / "prefix"),
    }
    for command in ("bench.plan", "bench.run"):
        subprocess.run(
            [sys.executable, "-m", command, *args, "--out", str(out)], env=env, cwd=ROOT, check=True
        )
    checks = check_folder(out, load_results(out)).checks
    for c in checks:
        print(c.sentence())
    assert [c.strategy for c in checks] == ["full", "partial3"]
    for c in checks:
        assert c.runs == 1 and c.error is not None and c.machine_speed is not None, c.sentence()
        assert abs(c.error_beyond_machine) <= 0.20, c.sentence()
        assert abs(c.error) <= 0.20 or abs(c.machine_speed - 1) > 0.10, c.sentence()


def test_the_machine_is_read_against_the_plans_own_ceiling_probe():
    # The plan timed the ceiling's way at 32,000 samples: 0.25 s a step, where its fit over the
    # calibration lengths says 0.2 (a repeated batch is not the alternating lengths of
    # calibration). The run's ceiling took 0.25 s at 32,000: the machine did not change.
    probed = plan()
    probed["calibrations"][0] |= {"probe_samples": 32_000, "probe_step_s": 0.25}
    (same,) = check_plan(probed, typed([run([12.0, 12.0], step_s=0.25)])).checks
    assert same.machine_speed == pytest.approx(1.0, rel=1e-3)
    assert same.error_beyond_machine == pytest.approx(same.error, rel=1e-3)
    # Without the probe (an older plan.json) the fit alone stands in for it.
    (fit_only,) = check_plan(plan(), typed([run([12.0, 12.0], step_s=0.25)])).checks
    assert fit_only.machine_speed == pytest.approx(1.25, rel=1e-3)
