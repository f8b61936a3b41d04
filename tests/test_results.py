import json
import math
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.result import (
    SCHEMA,
    Efficiency,
    EpochLog,
    Metrics,
    RunResult,
    ThroughputReport,
    migrate,
    result_figures,
)
from bench.result.store import (
    load_results,
    read_result,
    result_path,
    supersede,
    write_result,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_write_is_atomic_and_round_trips(tmp_path):
    path = result_path(tmp_path, "partial3+amp+cache", 2)
    assert path.name == "partial3+amp+cache__seed2.json"
    result = RunResult(
        strategy="x",
        seed=2,
        status="ok",
        metrics=Metrics(
            ccc={"arousal": 0.5}, ccc_mean=0.5, history=(EpochLog(0, 1.0, {"arousal": 0.4}, 0.4),)
        ),
        efficiency=Efficiency(throughput=ThroughputReport(train_samples_per_s=12.5)),
        notes=("a",),
    )
    write_result(path, result)
    assert read_result(path) == result  # the typed tree survives JSON unchanged
    assert json.loads(path.read_text())["schema"] == SCHEMA
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_unreadable_or_foreign_files_are_named_not_dropped(tmp_path):
    folder = tmp_path / "results"
    write_result(folder / "good.json", RunResult(strategy="full", seed=0))
    (folder / "other.json").write_text(json.dumps({"schema": 999}))
    with pytest.raises(BenchError, match=r"other.json has result schema 999; .* schemas 1 to"):
        load_results(tmp_path)
    (folder / "other.json").unlink()
    (folder / "half.json").write_text('{"schema": 1, "strat')
    with pytest.raises(BenchError, match=r"half\.json: not valid JSON \(truncated\?\)"):
        load_results(tmp_path)
    assert read_result(folder / "half.json") is None  # for resuming: a run to redo


def test_a_hand_edited_figure_is_named_with_its_file_and_field(tmp_path):
    folder = tmp_path / "results"
    write_result(folder / "good.json", RunResult(strategy="full", seed=0))
    edited = json.loads((folder / "good.json").read_text())
    edited["metrics"] = {"ccc_mean": "high", "ccc": {"arousal": "0.5"}}
    (folder / "edited.json").write_text(json.dumps(edited))
    with pytest.raises(BenchError) as err:
        load_results(tmp_path)
    msg = str(err.value)
    assert "edited.json: metrics.ccc.arousal = '0.5'; metrics.ccc_mean = 'high'" in msg
    assert "where a number (or null) belongs" in msg and "good.json" not in msg


def test_schema_1_results_load_through_a_migration():
    raw = {p.name: json.loads(p.read_text()) for p in (FIXTURES / "results").glob("*.json")}
    results = load_results(FIXTURES)
    assert len(results) == len(raw) == 8
    for r in results:
        flat = raw[f"{r.strategy}__seed{r.seed}.json"]["efficiency"]
        assert r.schema == SCHEMA and r.migrated_from_schema == 1
        assert isinstance(r.metrics.degenerate, tuple)
        # Every flat figure lands in its section, unchanged.
        eff = r.efficiency
        assert eff.throughput.train_samples_per_s == flat["train_samples_per_s"]
        assert eff.time.epoch_time_s == flat["epoch_time_s"]
        assert eff.memory.peak_rss_mib == flat["peak_rss_mib"]
        assert eff.allocator.peak_vram_alloc_mib == flat["peak_vram_alloc_mib"]
        assert eff.time.cache_build_s == flat["cache_build_s"]
        assert (eff.cache is None) == (flat.get("cache") is None)


def test_schema_2_flat_efficiency_is_nested():
    flat = {
        "train_samples_per_s": 10.0,
        "stall_share": 0.01,
        "peak_vram_alloc_mib": 900.0,
        "peak_vram_nvml_mib": 1000.0,
        "energy_j_per_epoch": 50.0,
        "epochs": 3,
        "setup_s": 1.5,
        "harness_efficiency": 0.95,
        "ceiling": {"samples_per_s": 10.5, "batch_size": 8, "warmup_steps": 3},
        "cache": None,
    }
    r = RunResult.from_dict(
        migrate({"schema": 2, "strategy": "full", "seed": 0, "efficiency": flat})
    )
    eff = r.efficiency
    assert eff.throughput.stall_share == 0.01 and eff.allocator.peak_vram_alloc_mib == 900.0
    assert eff.memory.peak_vram_nvml_mib == 1000.0 and eff.energy.energy_j_per_epoch == 50.0
    assert eff.time.epochs == 3 and eff.time.setup_s == 1.5
    assert eff.harness_efficiency == 0.95 and eff.ceiling.samples_per_s == 10.5
    assert r.migrated_from_schema == 2


def test_figure_keys_are_unique_and_each_has_a_section():
    figures = result_figures()
    assert len(figures) == len(set(figures)) >= 20
    r = RunResult.from_dict(
        migrate(json.loads((FIXTURES / "results/full__seed0.json").read_text()))
    )
    values = r.figures()
    assert set(figures) <= set(values)  # every declared figure is a column of the frame
    assert values["train_samples_per_s"] == r.efficiency.throughput.train_samples_per_s
    assert values["peak_vram_nvml_mib"] is None  # not measured on a CPU: None, never 0


def test_nan_is_written_as_null_with_a_note(tmp_path):
    p = tmp_path / "r.json"
    result = RunResult(
        strategy="full",
        seed=0,
        metrics=Metrics(ccc={"arousal": math.nan}, ccc_mean=math.inf),
        notes=("x",),
    )
    write_result(p, result)
    r = json.loads(p.read_text())
    assert r["metrics"]["ccc"]["arousal"] is None and r["metrics"]["ccc_mean"] is None
    assert r["notes"][0] == "x"
    assert "metrics.ccc.arousal" in r["notes"][1] and "metrics.ccc_mean" in r["notes"][1]
    assert read_result(p).metrics.ccc == {"arousal": None}


def test_supersede_keeps_the_replaced_result_with_its_time(tmp_path):
    path = result_path(tmp_path, "full", 0)
    write_result(path, RunResult(strategy="full", seed=0, status="ok"))
    kept = supersede(path)
    assert not path.exists() and kept.parent.name == "superseded"
    assert kept.name.startswith("full__seed0__") and kept.suffix == ".json"
    assert load_results(tmp_path) == []  # superseded results are not part of the run any more
