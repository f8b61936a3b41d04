"""RunConfig: its nested layout, the JSON round trip, and results written with the flat one."""

import dataclasses
import json
from pathlib import Path

from bench.config import DataConfig, MeterConfig, RunConfig, TrainConfig
from bench.data.adapters.label_range import parse_label_range
from bench.data.synthetic import SyntheticSpec
from bench.report.frame import replicate_of
from bench.result import RunResult, migrate

FIXTURE = Path(__file__).parent / "fixtures" / "results" / "full__seed0.json"


def test_the_flat_config_of_an_earlier_result_loads_nested():
    flat = json.loads(FIXTURE.read_text())["config"]
    assert "dataset" in flat and "data" not in flat  # written before DataConfig
    cfg = RunConfig.from_dict(flat)
    assert cfg.data == DataConfig(
        "synthetic",
        None,
        False,
        SyntheticSpec(n_speakers=12, clips_per_speaker=4, min_seconds=1.0, max_seconds=2.0),
    )
    assert cfg.meter == MeterConfig(nvml_interval_s=0.01, require_idle_gpu=False)
    assert (cfg.profile, cfg.strategy, cfg.seed, cfg.model) == ("smoke", "full", 0, "tiny-w2v2")
    # Fields added since take their defaults.
    assert cfg.train.batch_size == 4 and cfg.train.lr_scale == TrainConfig().lr_scale
    back = cfg.to_dict()
    assert back["data"]["root"] is None and "dataset" not in back
    assert RunConfig.from_dict(json.loads(json.dumps(back))) == cfg


def test_the_nested_layout_round_trips_through_json(tiny_config):
    cfg = dataclasses.replace(
        tiny_config, meter=MeterConfig(nvml_interval_s=0.05, peak_tflops=100.0)
    ).with_data(dataset="csv", label_range=parse_label_range("1,7"))
    d = cfg.to_dict()
    assert set(d) == {
        "profile",
        "strategy",
        "seed",
        "model",
        "weights",
        "device",
        "train",
        "data",
        "meter",
    }
    back = RunConfig.from_dict(json.loads(json.dumps(d)))
    assert back == cfg and back.config_hash() == cfg.config_hash()
    assert cfg.with_data(fold=2).config_hash() != cfg.config_hash()


def test_fields_this_version_does_not_know_are_ignored(tiny_config):
    d = json.loads(json.dumps(tiny_config.to_dict()))
    d["retired"] = 1
    d["train"]["retired"] = 1
    d["data"]["retired"] = 1
    d["data"]["synthetic"]["retired"] = 1
    d["meter"]["retired"] = 1
    assert RunConfig.from_dict(d) == tiny_config
    flat = json.loads(FIXTURE.read_text())["config"]
    flat["train"]["retired"] = flat["synthetic"]["retired"] = 1
    assert RunConfig.from_dict(flat).data.synthetic.n_speakers == 12


def test_the_report_reads_the_fold_of_either_layout(tiny_config):
    flat = json.loads(FIXTURE.read_text())
    assert replicate_of(RunResult.from_dict(migrate(flat))).fold is None
    flat["config"]["fold"] = 3
    assert replicate_of(RunResult.from_dict(migrate(flat))).fold == 3
    nested = RunResult(strategy="full", seed=0, config=tiny_config.with_data(fold=2).to_dict())
    assert replicate_of(nested).fold == 2
