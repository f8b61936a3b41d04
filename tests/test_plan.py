"""bench.plan: the length fit, the MSP-like corpus, the projection arithmetic, the CLI."""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys

import numpy as np
import pytest
import torch

from bench.cli import plan as cli
from bench.cli.planning import confirm
from bench.config import PROFILES, DataConfig, RunConfig
from bench.data.batching import LengthGrid, bucket_batches, frames_of
from bench.data.datasets import load_dataset
from bench.errors import BenchError
from bench.plan.build import _cache_builds, make_plan
from bench.plan.calibrate import Calibration, MemoryProbe, calibrate, calibration_lengths
from bench.plan.corpus import from_corpus, msp_like
from bench.plan.fit import fit_lengths
from bench.plan.project import project, store_bytes
from bench.plan.stores import existing_stores
from bench.result import DataInfo, Metrics, RunResult
from bench.result.store import result_path, write_result
from bench.train.worker import run_one

LENGTHS = [16_000, 32_000, 48_000, 64_000, 80_000]


def quadratic(n: int, a=0.05, b=0.4, c=0.3) -> float:
    x = frames_of(n) / frames_of(80_000)
    return a + b * x + c * x * x


def test_fit_recovers_a_quadratic_and_bounds_itself():
    fit = fit_lengths([(n, quadratic(n)) for n in LENGTHS])
    assert fit.coefficients == pytest.approx((0.05, 0.4, 0.3), abs=1e-9)
    assert fit.rel_error == pytest.approx(0.0, abs=1e-9)
    assert fit.seconds(40_000) == pytest.approx(quadratic(40_000))
    x = frames_of(80_000) / fit.scale_frames
    assert fit.quadratic_share(80_000) == pytest.approx(0.3 * x * x / quadratic(80_000))


def test_fit_does_not_assume_the_quadratic_term():
    linear = fit_lengths([(n, 0.1 + 0.002 * frames_of(n)) for n in LENGTHS])
    assert abs(linear.coefficients[2]) < 1e-9  # fitted, and found absent


def test_fit_bound_grows_with_noise():
    rng = np.random.default_rng(0)
    noisy = [(n, quadratic(n) * (1 + rng.uniform(-0.1, 0.1))) for n in LENGTHS]
    fit = fit_lengths(noisy)
    assert 0.0 < fit.rel_error < 1.0
    worst = max(abs(fit.seconds(n) - t) / t for n, t in noisy)
    assert fit.rel_error >= worst  # leave-one-out is never kinder than the in-sample residual


def test_fit_with_few_lengths_lowers_its_degree_and_gives_no_bound():
    two = fit_lengths([(16_000, 1.0), (32_000, 2.0)])
    assert len(two.coefficients) == 2 and two.rel_error is None
    one = fit_lengths([(16_000, 1.0), (16_000, 1.2)])
    assert one.coefficients == pytest.approx((1.1,)) and one.rel_error is None
    with pytest.raises(ValueError):
        fit_lengths([])


def test_calibration_lengths_span_the_grid():
    grid = LengthGrid.from_lengths(list(range(20_000, 180_000, 997)))
    picks = calibration_lengths(grid, 5)
    assert len(picks) == 5
    assert picks[0] == grid.lengths[0] and picks[-1] == grid.lengths[-1]
    assert calibration_lengths(LengthGrid(()), 5) == []


def test_msp_like_corpus_has_durations_only():
    c = msp_like(1000, max_seconds=8.0)
    sizes = {s: len(v) for s, v in c.lengths.items()}
    assert sizes == {"train": 700, "val": 150, "test": 150}
    assert max(c.all_lengths()) == 8 * 16_000
    assert c.cropped["train"] == sum(n == 8 * 16_000 for n in c.lengths["train"])
    assert 1000 * 2.75 / 3600 <= c.hours <= 1000 * 11 / 3600
    with pytest.raises(BenchError, match="--msp-like"):
        msp_like(0, 8.0)


def fake_calibration(cache: bool, representation: str = "hidden-state-entering-layer-3"):
    fit = fit_lengths([(n, quadratic(n)) for n in LENGTHS])
    return Calibration(
        strategy="partial3+cache" if cache else "partial3",
        precision="fp32",
        device="cpu",
        batch_size=8,
        train=fit,
        eval=fit_lengths([(n, quadratic(n) / 3) for n in LENGTHS]),
        prefix=fit_lengths([(n, quadratic(n) / 2) for n in LENGTHS]) if cache else None,
        first_visit_s=0.01,
        representation=representation if cache else None,
        store_dtype="fp16" if cache else None,
        hidden_size=64,
        pooled_rows=None,
        memory=MemoryProbe(None, None, 8, None, None, "no CUDA device (cpu): cannot be projected"),
        power_w=None,
        power_note="no CUDA device (cpu): energy cannot be projected on this machine",
        build_s=0.5,
        wall_s=1.0,
    )


def test_projection_follows_the_trainers_batches():
    corpus = msp_like(400, max_seconds=5.0)
    grid = LengthGrid.from_lengths(corpus.all_lengths())
    cfg = PROFILES["quick"].train
    cal = fake_calibration(cache=True)
    plan = project(cal, corpus, cfg, [0], grid, None, {0: True}, "memory")
    train = list(corpus.lengths["train"])
    by_hand = np.mean(
        [
            sum(
                quadratic(grid.pad_to(max(train[i] for i in b)))
                for b in bucket_batches(train, 8, 0, e)
            )
            for e in range(3)
        ]
    )
    assert plan.epoch_s.value == pytest.approx(by_hand, rel=1e-9)
    assert plan.epoch_s.error == pytest.approx(0.0, abs=1e-9)
    assert plan.steps_per_epoch == len(bucket_batches(train, 8, 0, 0))
    assert store_bytes(cal, corpus) == sum(frames_of(n) for n in corpus.all_lengths()) * 64 * 2
    assert plan.store.value == pytest.approx(store_bytes(cal, corpus) / 2**30)
    # Disk rates not measured: the cache build cannot be projected, and says why.
    assert (
        plan.cache_build_s.value is None and "rates were not measured" in plan.cache_build_s.method
    )
    assert plan.peak_memory.value is None and "cannot be projected" in plan.peak_memory.method
    assert plan.energy_per_epoch.value is None


def test_total_is_epochs_times_seeds_and_counts_each_cache_build_once():
    corpus = msp_like(200, max_seconds=20.0)  # nothing cropped: seeds share the store
    grid = LengthGrid.from_lengths(corpus.all_lengths())
    cfg = PROFILES["quick"].train
    cal = fake_calibration(cache=False)
    one = project(cal, corpus, cfg, [0], grid, None, {0: False}, None)
    three = project(cal, corpus, cfg, [0, 1, 2], grid, None, dict.fromkeys(range(3), False), None)
    per_run = (
        cfg.max_epochs * (one.epoch_s.value + one.val_s.value)
        + one.test_s.value
        + one.first_visits_s.value
        + one.setup_s.value
    )
    assert one.total_s.value == pytest.approx(per_run)
    assert three.total_s.value == pytest.approx(3 * per_run, rel=0.02)
    a, b = fake_calibration(True), fake_calibration(True)
    b = Calibration(**{**b.__dict__, "strategy": "lora3+cache"})
    other = fake_calibration(True, "pooled-hidden-states-0..6")
    other = Calibration(**{**other.__dict__, "strategy": "head+cache"})
    shared = _cache_builds([a, b, other], [0, 1], seed_specific=False)
    assert shared == {
        "partial3+cache": {0: True, 1: False},
        "lora3+cache": {0: False, 1: False},
        "head+cache": {0: True, 1: False},
    }
    per_seed = _cache_builds([a, b], [0, 1], seed_specific=True)
    assert per_seed["partial3+cache"] == {0: True, 1: True}


def test_a_store_built_by_an_earlier_sweep_is_not_counted_again(tmp_path, monkeypatch, tiny_config):
    directory = tmp_path / "prefix"
    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(directory))
    cfg = dataclasses.replace(tiny_config.with_train(max_epochs=1), strategy="partial2+cache")
    corpus = load_dataset(cfg.data, 0)
    assert existing_stores([cfg], corpus, directory) == {}  # nothing built yet
    assert run_one(cfg, corpus=corpus).status == "ok"  # builds the store
    found = existing_stores([cfg, dataclasses.replace(cfg, strategy="partial2")], corpus, directory)
    (((name, seed), path),) = found.items()
    assert (name, seed) == ("partial2+cache", 0) and path.parent == directory and path.is_file()
    # Other inputs, another store: the fp32 store dtype.
    assert (
        existing_stores(
            [dataclasses.replace(cfg, strategy="partial2+cache:fp32")], corpus, directory
        )
        == {}
    )
    # The plan then counts no build for that run, nor for a later one sharing the store.
    a, b = fake_calibration(True), fake_calibration(True)
    b = Calibration(**{**b.__dict__, "strategy": "lora3+cache"})
    builds = _cache_builds([a, b], [0, 1], False, {("partial3+cache", 0)})
    assert builds == {"partial3+cache": {0: False, 1: False}, "lora3+cache": {0: False, 1: False}}


def test_a_small_sweep_is_calibrated_briefly(one_thread):
    """Timing a strategy costs at most a share of the time the sweep trains it: one step to run
    leaves the minimum (two steps a length and pass), a large sweep the full --calibration-seconds."""
    grid = LengthGrid.from_lengths([16_000, 24_000, 32_000])
    cfg = dataclasses.replace(PROFILES["smoke"].train, batch_size=2)
    cpu = torch.device("cpu")
    big = calibrate("full", "tiny-w2v2", cfg, grid, 3, cpu, 3, 0.3, sweep_steps=10**6)
    small = calibrate("full", "tiny-w2v2", cfg, grid, 3, cpu, 3, 0.3, sweep_steps=1)
    assert big.seconds_per_point == pytest.approx(0.3)
    assert small.seconds_per_point < 0.05 and small.wall_s < big.wall_s
    assert len(small.train.points) == 3 and small.train.seconds(24_000) > 0


def test_random_init_seeds_build_a_store_each(tmp_path, tiny_config, one_thread):
    cfg = dataclasses.replace(tiny_config.with_train(max_epochs=1), strategy="partial2+cache")
    corpus = from_corpus(load_dataset(cfg.data, 0), cfg.train.max_seconds)
    seeds = [cfg, dataclasses.replace(cfg, seed=1)]
    plan = make_plan(seeds, corpus, torch.device("cpu"), 2, 0.05, cache_dir=tmp_path)
    assert plan.strategies[0].cache_builds == 2  # each seed's random prefix is its own store


@pytest.fixture
def one_thread():
    # On the shared 2-core machine, two intra-op threads waiting on each other under load made
    # steps 5x slower and erratic (measured); one thread keeps calibration and runs comparable.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cli_writes_plan_and_plot_with_reasons_on_cpu(tmp_path, capsys, one_thread, monkeypatch):
    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(tmp_path / "prefix"))
    out = tmp_path / "run"
    # An earlier result of the same corpus: the plan plots hours against its CCC.
    earlier = RunResult(
        strategy="partial1+cache",
        seed=0,
        status="ok",
        data=DataInfo(name="msp-like-40"),
        metrics=Metrics(ccc_mean=0.4),
    )
    write_result(result_path(out, "partial1+cache", 0), earlier)
    argv = [
        "--profile", "smoke", "--msp-like", "40", "--strategies", "full,partial1+cache",
        "--batch-size", "2", "--max-seconds", "4", "--calibration-points", "3",
        "--calibration-seconds", "0.05", "--out", str(out),
    ]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "partial1+cache" in printed and "GPU memory cannot be projected" in printed
    plan = json.loads((out / "plan.json").read_text())
    assert plan["corpus"]["clips"] == {"train": 28, "val": 6, "test": 6}
    assert "no audio written" in plan["corpus"]["source"]
    full, cached = plan["strategies"]
    assert full["epoch_s"]["value"] > 0 and full["epoch_s"]["method"]
    assert full["peak_memory"]["value"] is None
    assert "cannot be projected on this machine" in full["peak_memory"]["method"]
    assert full["cache_build_s"] is None and cached["cache_build_s"]["value"] > 0
    assert cached["store"]["value"] > 0
    fit = plan["calibrations"][0]["train"]
    assert len(fit["points"]) == 3 and len(fit["coefficients"]) == 3
    md = (out / "plan.md").read_text()
    assert "How each figure was obtained" in md and "plan_hours_vs_ccc.png" in md
    assert (out / "plan_hours_vs_ccc.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--calibration-points", "0", "--calibration-points must be >= 1"),
        ("--calibration-seconds", "0", "--calibration-seconds must be > 0"),
        ("--msp-like", "0", "--msp-like takes a clip count"),
    ],
)
def test_cli_bad_input_names_the_option(tmp_path, capsys, flag, value, message):
    argv = ["--profile", "smoke", "--out", str(tmp_path), "--strategies", "full"]
    argv += ["--msp-like", "10"] if flag != "--msp-like" else []
    assert cli.main([*argv, flag, value]) == 2
    assert message in capsys.readouterr().err


def test_confirm_asks_only_on_a_terminal(monkeypatch):
    from rich.console import Console

    console = Console()
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert confirm(console, yes=False)  # nobody to ask: go on
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(console, "input", lambda prompt: "n")
    assert not confirm(console, yes=False)
    assert confirm(console, yes=True)
    monkeypatch.setattr(console, "input", lambda prompt: "y")
    assert confirm(console, yes=False)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(console, "input", lambda prompt: pytest.fail("asked in CI"))
    assert confirm(console, yes=False)


def test_run_plan_first_stops_when_declined(tmp_path, monkeypatch, one_thread, synth_dir):
    import bench.cli.run as run_command
    from bench.cli.run import main

    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(tmp_path / "prefix"))
    monkeypatch.setattr(run_command, "confirm", lambda console, yes: False)
    out = tmp_path / "run"
    argv = [
        "--profile", "smoke", "--data-root", str(synth_dir), "--strategies", "partial1",
        "--calibration-points", "3", "--calibration-seconds", "0.05", "--out", str(out),
        "--plan-first", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    assert (out / "plan.json").exists() and (out / "plan.md").exists()
    assert not (out / "results").exists()  # declined: nothing ran


@pytest.mark.calibration
@pytest.mark.parametrize("strategies", [("partial3", "partial3+cache")])
def test_quick_plan_matches_measured_epochs(tmp_path, monkeypatch, one_thread, strategies):
    """The plan against reality on this CPU: the `quick` profile for two strategies, planned and
    run; the measured epoch times fall within 20% of the projected ones."""
    monkeypatch.setenv("SERBENCH_PREFIX_CACHE", str(tmp_path / "prefix"))
    monkeypatch.setenv("SERBENCH_CACHE", str(tmp_path / "cache"))
    p = PROFILES["quick"]
    # Two epochs: the epoch time does not depend on how many epochs the profile runs.
    train = dataclasses.replace(p.train, max_epochs=2)
    cfgs = [
        RunConfig(
            "quick",
            s,
            0,
            p.model,
            "random",
            "cpu",
            train,
            DataConfig("synthetic", None, False, p.synthetic),
        )
        for s in strategies
    ]
    corpus = load_dataset(cfgs[0].data, 0)
    lengths = from_corpus(corpus, train.max_seconds)

    def projected(cfg: RunConfig) -> float:
        plan = make_plan([cfg], lengths, torch.device("cpu"), cache_dir=tmp_path)
        return plan.strategies[0].epoch_s.value

    for cfg in cfgs:
        # Other engineers' jobs share this machine's 2 cores, and its load moves by a third
        # within a minute (measured): each run is bracketed by a plan before and one after,
        # and compared with their mean. Neither plan sees the run's own timings.
        before = projected(cfg)
        result = run_one(cfg, corpus=corpus)
        after = projected(cfg)
        assert result.status == "ok", result.error
        epochs = [h.epoch_time_s for h in result.metrics.history]
        expected = (before + after) / 2
        print(f"{cfg.strategy}: projected {before:.2f} s / {after:.2f} s, measured {epochs}")
        assert abs(statistics.mean(epochs) / expected - 1) <= 0.20, (
            cfg.strategy,
            before,
            after,
            epochs,
        )
